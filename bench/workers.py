"""One instance with 1 and with 2 worker processes (``cardvault serve --workers``), same run.

    python bench/workers.py [--database-url URL] [--rounds 2] [--auths 40] [--apdus 150]

Starts ``cardvault serve`` on one data directory alternately with 1 and 2 workers (1, 2,
1, 2, …, so that the machine's drift falls on both) and measures, over HTTPS on the
loopback: full authentications (sign-in with passcode + TOTP, then a signature) per second
at 2 and 4 clients, with a cheap KDF (64 KiB, 1 pass) so that the service's own work, not
Argon2, is what is measured; and APDUs per second answered by the PC/SC relay
(``/api/v1/piv/apdu``, a GET DATA only the service answers) over 1 link and over 4 links
at once, each link on its own kept-alive connection as a connector holds it. Prints each
round and the ratio 2 workers ÷ 1 worker of each measure, with the load average, and the
service's CPU per operation (all its processes, from /proc: load-independent, unlike the
rates).
The clients are threads of this process, on the same cores as the server.
"""

from __future__ import annotations

import argparse
import base64
import os
import signal
import ssl
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from tests.support import auth as a  # noqa: E402
from tests.support import piv_service as p  # noqa: E402
from tests.support.live import wait_ready  # noqa: E402
from tests.support.redis_server import REDIS_URL, fresh_prefix  # noqa: E402

from _setup import data_dir, holders  # noqa: E402
from auth import CHEAP_KDF, Codes, _cpu, free_port, run_level  # noqa: E402
from cardvault.config import Settings  # noqa: E402
from cardvault.crypto import channel as cchannel  # noqa: E402
from cardvault.services.signin.engine import Engine  # noqa: E402
from cardvault.services.system.runtime import Actor, open_runtime  # noqa: E402
from cardvault.services.transport import channel  # noqa: E402

#: GET DATA of the fingerprints object: PIN-protected, so never answered by the connector
SERVICE_APDU = bytes.fromhex("00CB3FFF055C035FC10300")
LINKS = 4


class HttpLink:
    """A connector's side of one reader link, over its own kept-alive HTTPS connection."""

    def __init__(self, key: bytes, use: p.InUse, reader: p.Reader) -> None:
        self.key, self.use, self.link_id, self.seq = key, use, reader.link_id, reader.seq
        self.http: httpx.Client | None = None

    def send(self, apdu: bytes) -> None:
        assert self.http is not None
        self.seq += 1
        claims = {
            "token": self.use.token,
            "session_key": base64.b64encode(self.use.session_key).decode(),
            "link_id": self.link_id,
            "seq": self.seq,
            "apdu": base64.b64encode(apdu).decode(),
        }
        token, jti = cchannel.seal_channel_request(self.key, self.link_id, claims, now=time.time())
        answer = self.http.post(
            "/api/v1/piv/apdu", content=token, headers={"content-type": "application/jose"}
        )
        answer.raise_for_status()
        out = cchannel.open_channel_response(self.key, self.link_id, jti, answer.text)
        assert len(base64.b64decode(str(out["response"]))) >= 2, out  # a status word


def _links(settings: Settings) -> list[HttpLink]:
    """One card, signed in, its PIN verified, in ``LINKS`` reader links."""
    rt = open_runtime(settings)
    try:
        operator = Actor.operator("bench")
        use = p.issued_and_enrolled(rt, operator, Engine(rt))
        a.local_network(rt, operator)
        readers = [use.reader] + [
            p.open_reader(rt, use.token, use.session_key) for _ in range(LINKS - 1)
        ]
        for reader in readers:
            assert reader.verify() == 0x9000
        return [HttpLink(channel.link_key(rt, r.link_id), use, r) for r in readers]
    finally:
        rt.close()


def _apdus_per_second(url: str, ca: str, links: list[HttpLink], count: int) -> float:
    tls = ssl.create_default_context(cafile=ca)
    for link in links:
        link.http = httpx.Client(base_url=url, verify=tls, timeout=60)
        for _ in range(5):  # warm up: the connection, the kept channel key
            link.send(SERVICE_APDU)
    started = time.perf_counter()
    with ThreadPoolExecutor(len(links)) as pool:
        list(pool.map(lambda link: [link.send(SERVICE_APDU) for _ in range(count)], links))
    wall = time.perf_counter() - started
    for link in links:
        assert link.http is not None
        link.http.close()
    return len(links) * count / wall


def _serve(settings: Settings, workers: int, port: int) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "CARDVAULT_DATA_DIR": str(settings.data_dir),
        "CARDVAULT_PORT": str(port),
        "CARDVAULT_RATE_LIMITS_ENABLED": "false",
        "CARDVAULT_WORKERS": str(workers),
        "CARDVAULT_REDIS_URL": REDIS_URL,
        "CARDVAULT_REDIS_PREFIX": fresh_prefix(),
    }
    if settings.database_url:
        env["CARDVAULT_DATABASE_URL"] = settings.database_url
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "cardvault"), "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,  # a pipe nobody reads would fill and stop the server
        text=True,
    )


def _tree_cpu(pid: int) -> float:
    """User + system CPU seconds of a process and all its descendants (the workers), from
    Linux /proc: what the service spent, whichever process spent it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            total += _cpu(Path(f"/proc/{current}/stat"))
        except OSError:
            continue
        todo.extend(children.get(current, []))
    return total


def _round(
    settings: Settings,
    workers: int,
    measures: dict[str, tuple[Callable[[str, str], float], Callable[[], int]]],
    codes: Codes,
    lock: threading.Lock,
) -> dict[str, float]:
    port = free_port()
    url, ca = f"https://localhost:{port}", str(settings.data_dir / "tls" / "cert.pem")
    server = _serve(settings, workers, port)
    try:
        wait_ready(url, ssl.create_default_context(cafile=ca), server)
        with lock:  # warm up every worker: imports, unsealed keys, pools, statement caches
            run_level(url, ca, codes, 4, 4 * workers)
        result = {}
        for name, (measure, count) in measures.items():
            before = _tree_cpu(server.pid)
            result[name] = measure(url, ca)
            result[f"{name} cpu ms"] = (_tree_cpu(server.pid) - before) / count() * 1000
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    shown = ", ".join(f"{k} {v:.1f}" for k, v in result.items() if "cpu" not in k)
    cpu = ", ".join(f"{v:.1f}" for k, v in result.items() if "cpu" in k)
    one, five, _ = os.getloadavg()
    print(
        f"  {workers} worker(s): {shown}; service CPU ms per op {cpu} (load {one:.1f}/{five:.1f})",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each (alternating)")
    parser.add_argument("--auths", type=int, default=40, help="authentications per level")
    parser.add_argument("--apdus", type=int, default=150, help="APDUs per link per round")
    args = parser.parse_args()
    print("cardvault: one instance with 1 and 2 worker processes", flush=True)
    settings, rt = data_dir(args.database_url)
    rt.close()
    cheap = Settings(data_dir=settings.data_dir, database_url=args.database_url, **CHEAP_KDF)  # type: ignore[arg-type]
    cheap_rt = open_runtime(cheap)
    codes = Codes(holders(cheap_rt, 24, authenticators=8))
    cheap_rt.close()
    links = _links(cheap)
    lock = threading.Lock()

    def auths(concurrency: int) -> Callable[[str, str], float]:
        def measure(url: str, ca: str) -> float:
            with lock:
                return run_level(url, ca, codes, concurrency, args.auths)["throughput"]

        return measure

    def apdus(n: int) -> Callable[[str, str], float]:
        return lambda url, ca: _apdus_per_second(url, ca, links[:n], args.apdus)

    measures = {
        "auth/s @2": (auths(2), lambda: args.auths),
        "auth/s @4": (auths(4), lambda: args.auths),
        "APDU/s 1 link": (apdus(1), lambda: args.apdus + 5),
        f"APDU/s {LINKS} links": (apdus(LINKS), lambda: LINKS * (args.apdus + 5)),
    }
    runs: dict[int, list[dict[str, float]]] = {1: [], 2: []}
    for _ in range(args.rounds):
        for workers in (1, 2):
            runs[workers].append(_round(cheap, workers, measures, codes, lock))
    print(f"median of {args.rounds} rounds, 2 workers ÷ 1 worker ({os.cpu_count()} cores):")
    for name in [m for base in measures for m in (base, f"{base} cpu ms")]:
        one = statistics.median(r[name] for r in runs[1])
        two = statistics.median(r[name] for r in runs[2])
        print(f"  {name:16} {one:8.1f} → {two:8.1f}   ratio {two / one:.2f}")


if __name__ == "__main__":
    main()
