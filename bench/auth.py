"""Full authentication through the HTTP API against its floor (one KDF + one signature).

Full authentication = JWE login with passcode + TOTP (one KDF, session opened, audited) and
a JWE challenge signature with the authentication key (audited): what a holder's PC does to
sign in to a relying party. The floor is measured in this run, on this machine: one Argon2id
derivation at the configured parameters plus one RSA-2048 signature.

Usage: .venv/bin/python bench/auth.py [--database-url URL] [--per-level N]
Prints latency p50/p99 and throughput at concurrency 1, cores and 2x cores, as ratios to the
floor, the service's CPU time per authentication besides the KDF and the signature (read
from /proc, so Linux only; like the rest, meaningful on an otherwise idle machine), then an
overload run showing that the bounded queue answers 429 + Retry-After.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pyotp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _setup import PASSCODE, BenchHolder, data_dir, holders
from cardvault.clients.agent.api import AgentError, CardvaultApi
from cardvault.crypto import envelope
from cardvault.crypto import keys as ckeys
from cardvault.crypto.kdf import derive_key

CORES = os.cpu_count() or 1


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc), None where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def floor_ms(settings_argon2: object, runs: int = 15) -> tuple[float, float, float, float]:
    """Wall-clock floor, KDF and signature medians, and the floor's CPU time (all ms)."""
    key = ckeys.generate_private_key(ckeys.KeyAlgorithm.RSA2048)
    kdf, sig = [], []
    cpu_start = time.process_time()
    for _ in range(runs):
        t = time.perf_counter()
        derive_key(b"passcode for the floor", os.urandom(16), settings_argon2)  # type: ignore[arg-type]
        kdf.append(time.perf_counter() - t)
        t = time.perf_counter()
        ckeys.sign_digest(key, os.urandom(32), scheme=ckeys.SignatureScheme.RSA_PKCS1V15)
        sig.append(time.perf_counter() - t)
    cpu = (time.process_time() - cpu_start) / runs * 1000
    k, s = statistics.median(kdf) * 1000, statistics.median(sig) * 1000
    return k + s, k, s, cpu


def envelope_ms(runs: int = 30) -> float:
    """Median cost of opening one request envelope (RSA-OAEP-256 with the service's
    RSA-3072 transport key, then A256GCM): DESIGN §3.5 puts one on each of the two requests
    of an authentication, so twice this is a floor the design itself sets."""
    key = envelope.TransportKey.generate()
    times = []
    for _ in range(runs):
        token = envelope.seal_request(key.public_jwk(), {"passcode": "x" * 32}, now=time.time())
        t = time.perf_counter()
        envelope.open_request({key.kid: key}, token.token, now=time.time())
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


class Codes:
    """(holder, authenticator) pairs not yet used in the current TOTP time step, never the
    same holder twice at once (a card allows three passcodes in flight)."""

    def __init__(self, people: list[BenchHolder]) -> None:
        self.people = people
        self._step = -1
        self._used: set[tuple[str, str]] = set()
        self._busy: set[str] = set()
        self._cond = threading.Condition()

    def take(self) -> tuple[str, str]:
        with self._cond:
            while True:
                step = int(time.time() // 30)
                if step != self._step:
                    self._step, self._used = step, set()
                for h in self.people:
                    if h.email in self._busy:
                        continue
                    for s in h.totp_secrets:
                        if (h.email, s) not in self._used:
                            self._used.add((h.email, s))
                            self._busy.add(h.email)
                            return h.email, pyotp.TOTP(s).now()
                self._cond.wait(timeout=min(1.0, 30 - time.time() % 30 + 0.05))

    def release(self, email: str) -> None:
        with self._cond:
            self._busy.discard(email)
            self._cond.notify_all()


def one_authentication(client: httpx.Client, codes: Codes) -> float:
    email, code = codes.take()
    try:
        return _authenticate(client, email, code)
    finally:
        codes.release(email)


def _authenticate(client: httpx.Client, email: str, code: str) -> float:
    api = CardvaultApi(client)
    api.transport_key()
    start = time.perf_counter()
    login = api.sealed_call(
        "/api/v1/auth/login",
        {
            "identifier": {"kind": "email", "value": email},
            "passcode": PASSCODE,
            "second_factor": {"method": "totp", "code": code},
        },
    )
    session = login["session"]
    api.sealed_call(
        "/api/v1/card/sign",
        {
            "token": session["token"],
            "session_key": login["session_key"],
            "key": "authentication",
            "hash": "sha256",
            "digest": base64.b64encode(hashlib.sha256(os.urandom(16)).digest()).decode(),
        },
    )
    return time.perf_counter() - start


def run_level(url: str, ca: str, codes: Codes, concurrency: int, total: int) -> dict[str, float]:
    latencies: list[float] = []
    refused = 0
    lock = threading.Lock()
    local = threading.local()

    def task(_: int) -> None:
        nonlocal refused
        if not hasattr(local, "client"):
            local.client = httpx.Client(
                base_url=url, verify=ssl.create_default_context(cafile=ca), timeout=60
            )
        try:
            value = one_authentication(local.client, codes)
        except AgentError as exc:
            if exc.data.get("status") != 429:
                raise
            with lock:
                refused += 1
            return
        with lock:
            latencies.append(value)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(task, range(total)))
    wall = time.perf_counter() - start
    local.__dict__.clear()
    latencies.sort()
    return {
        "n": len(latencies),
        "refused": refused,
        "wall": wall,
        "p50": statistics.median(latencies) * 1000 if latencies else 0,
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
        if latencies
        else 0,
        "throughput": len(latencies) / wall,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--per-level", type=int, default=40)
    parser.add_argument("--holders", type=int, default=40)
    args = parser.parse_args()
    print("cardvault authentication benchmark", flush=True)
    settings, rt = data_dir(args.database_url)
    people = holders(rt, args.holders, authenticators=8)
    rt.close()
    port = free_port()
    env = {
        **os.environ,
        "CARDVAULT_DATA_DIR": str(settings.data_dir),
        "CARDVAULT_PORT": str(port),
        "CARDVAULT_KDF_QUEUE": str(2 * CORES),
    }
    if args.database_url:
        env["CARDVAULT_DATABASE_URL"] = args.database_url
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "cardvault"), "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url, ca = f"https://localhost:{port}", str(settings.data_dir / "tls" / "cert.pem")
    try:
        _wait(url, ca)
        report(settings, url, ca, Codes(people), args.per_level, server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)


def _wait(url: str, ca: str) -> None:
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            httpx.get(
                f"{url}/api/v1/health", verify=ssl.create_default_context(cafile=ca), timeout=2
            ).raise_for_status()
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit("the server did not start")


def report(
    settings: object, url: str, ca: str, codes: Codes, per_level: int, server_pid: int
) -> None:
    floor, kdf, sig, floor_cpu = floor_ms(settings.argon2)  # type: ignore[attr-defined]
    sealed = envelope_ms()
    ceiling = CORES / (kdf / 1000)
    print(
        f"\nfloor: {floor:.1f} ms = Argon2id {kdf:.1f} ms + RSA-2048 signature {sig:.2f} ms "
        f"(m={settings.argon2_memory_kib} KiB, t={settings.argon2_time_cost}); "  # type: ignore[attr-defined]
        f"KDF ceiling {ceiling:.1f}/s on {CORES} cores"
    )
    print(
        f"{'concurrency':>11} {'n':>4} {'p50 ms':>8} {'p50/floor':>9} {'p99 ms':>8} "
        f"{'p99/floor':>9} {'auth/s':>7} {'of ceiling':>10}"
    )
    run_level(url, ca, codes, 1, 3)  # warm up connections and caches
    overhead: float | None = None
    for level in (1, CORES, 2 * CORES):
        cpu_before = process_cpu_seconds(server_pid)
        r = run_level(url, ca, codes, level, per_level)
        cpu_after = process_cpu_seconds(server_pid)
        if level == 1 and cpu_before is not None and cpu_after is not None and r["n"]:
            service_cpu = (cpu_after - cpu_before) / r["n"] * 1000
            overhead = service_cpu - floor_cpu
        print(
            f"{level:>11} {r['n']:>4.0f} {r['p50']:>8.1f} {r['p50'] / floor:>9.2f} "
            f"{r['p99']:>8.1f} {r['p99'] / floor:>9.2f} {r['throughput']:>7.1f} "
            f"{r['throughput'] / ceiling:>10.0%}",
            flush=True,
        )
    if overhead is not None:
        print(
            f"service CPU per authentication at concurrency 1: {overhead + floor_cpu:.1f} ms, "
            f"of which {overhead:.1f} ms besides the KDF and the signature "
            f"({floor_cpu:.1f} ms of CPU)"
        )
    print(
        f"the design's own per-authentication cost besides the floor: two request envelopes "
        f"(RSA-OAEP-3072 + AES-GCM) = {2 * sealed:.1f} ms, i.e. floor + envelopes = "
        f"{(floor + 2 * sealed) / floor:.2f}x floor"
    )
    level = 8 * CORES
    r = run_level(url, ca, codes, level, per_level)
    print(
        f"\noverload at concurrency {level} (queue {2 * CORES}): {r['n']:.0f} done, "
        f"{r['refused']:.0f} answered 429 + Retry-After, p99 {r['p99']:.1f} ms "
        f"({r['p99'] / floor:.2f}x floor)"
    )


if __name__ == "__main__":
    main()
