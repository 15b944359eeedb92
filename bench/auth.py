"""Full authentication through the HTTP API against its floor (one KDF + one signature).

Full authentication = JWE login with passcode + TOTP (one KDF, session opened, audited) and
a JWE challenge signature with the authentication key (audited): what a holder's PC does to
sign in to a relying party. The floor is measured in this run, on this machine: one Argon2id
derivation at the configured parameters plus one RSA-2048 signature.

Usage: .venv/bin/python bench/auth.py [--database-url URL] [--per-level N]
Prints first the statements and transactions of one sign-in and one signature (counted in
this process, bench/_statements.py); latency p50/p99 and throughput at concurrency 1, cores
and 2x cores, as ratios to the floor; the same for a group of holders at OWASP's minimum KDF
(19 MiB x 2); the service's CPU time per authentication besides the KDF and the signature
(read from /proc, so Linux only), measured on a group of holders whose passcode slots use a
64 KiB, 1-pass Argon2id: the same requests, statements and audit events, without a 200 ms
KDF whose run-to-run spread would drown a few milliseconds -- and, while that runs, the
slowest parts of a sign-in (bench/_profile.py); the start-up time of the two command lines;
an overload run showing that the bounded queue answers 429 + Retry-After; and at the end
every row of issue 16's table with its target.
Like the rest, meaningful on an otherwise idle machine: the load average is printed beside.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
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
import pyotp

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _statements as statements
from _profile import profiled, slowest, spy
from _setup import BenchHolder, data_dir, holders
from cardvault.clients.common.api import CardvaultApi, ServiceError
from cardvault.config import Settings
from cardvault.crypto import channel, envelope
from cardvault.crypto import keys as ckeys
from cardvault.crypto.kdf import Argon2Params, derive_key
from cardvault.services.system.runtime import open_runtime

CORES = os.cpu_count() or 1


CHEAP_KDF = {"argon2_time_cost": 1, "argon2_memory_kib": 64, "insecure_test_kdf": True}
#: OWASP's minimum for Argon2id, the lowest the service accepts
OWASP_KDF = {"argon2_time_cost": 2, "argon2_memory_kib": 19 * 1024}
CPU_RUNS = 120
TABLE: list[tuple[str, str, str]] = []  # (measure, this run, target), printed at the end


def row(measure: str, value: str, target: str) -> None:
    TABLE.append((measure, value, target))


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f}/{five:.2f}"


def _cpu(stat: Path) -> float:
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_seconds(pid: int) -> tuple[float, float] | None:
    """User + system CPU time of a process's main thread (the event loop: TLS, HTTP,
    routing) and of the rest of the process (the work), from Linux /proc; None elsewhere.
    The rest is the whole process minus the main thread, not a sum over live threads:
    worker threads that ended between two readings would take their time with them."""
    try:
        total = _cpu(Path(f"/proc/{pid}/stat"))
        main = _cpu(Path(f"/proc/{pid}/task/{pid}/stat"))
        return main, total - main
    except OSError:
        return None


def floor_sample(settings_argon2: Argon2Params, key: object) -> float:
    """One KDF + one signature, in ms."""
    t = time.perf_counter()
    derive_key(b"passcode for the floor", os.urandom(16), settings_argon2)
    ckeys.sign_digest(key, os.urandom(32), scheme=ckeys.SignatureScheme.RSA_PKCS1V15)  # type: ignore[arg-type]
    return (time.perf_counter() - t) * 1000


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


def envelope_ms(runs: int = 30) -> tuple[float, float, float]:
    """Median cost (ms) of opening one request envelope of each kind: RSA-OAEP-256 to an
    RSA-3072 transport key (third-party clients), ECDH-ES+A256KW to the P-256 one (what
    cardvault's clients send to sign in) and a session channel envelope (dir/A256GCM, every
    in-session call): a sign-in plus a signature costs one ECDH opening and one channel."""
    rsa, ec = envelope.TransportKey.generate(), envelope.TransportKey.generate_ecdh()
    ck = channel.new_channel_key()
    times: dict[str, list[float]] = {"rsa": [], "ec": [], "dir": []}
    for _ in range(runs):
        for name, key in (("rsa", rsa), ("ec", ec)):
            token = envelope.seal_request(key.public_jwk(), {"passcode": "x" * 32}, now=time.time())
            t = time.perf_counter()
            envelope.open_request({key.kid: key}, token.token, now=time.time())
            times[name].append(time.perf_counter() - t)
        sealed, _jti = channel.seal_channel_request(ck, "s", {"token": "x" * 43}, now=time.time())
        t = time.perf_counter()
        channel.open_channel_request(lambda _kid: ck, sealed, now=time.time())
        times["dir"].append(time.perf_counter() - t)
    rsa_ms, ec_ms, dir_ms = (statistics.median(times[k]) * 1000 for k in ("rsa", "ec", "dir"))
    return rsa_ms, ec_ms, dir_ms


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


def one_authentication(
    client: httpx.Client, codes: Codes, agents: dict[str, CardvaultApi]
) -> float:
    """One holder's authentication through that holder's own API client (``agents``, one
    per holder on this connection): a real agent fetches the JWKS once and keeps it, so
    the service's JWKS answer is not part of a sign-in's cost."""
    email, code = codes.take()
    try:
        api = agents.get(email)
        if api is None:
            api = agents[email] = CardvaultApi(client)
            api.transport_key()
        return _authenticate(api, email, code)
    finally:
        codes.release(email)


def _authenticate(api: CardvaultApi, email: str, code: str) -> float:
    start = time.perf_counter()
    statements.sign(api, statements.sign_in(api, email, code))
    return time.perf_counter() - start


def run_level(
    url: str,
    ca: str,
    codes: Codes,
    concurrency: int,
    total: int,
    between: Callable[[], float] | None = None,
) -> dict[str, float]:
    """``between`` (one client only): a floor sample taken after each sign-in, so that the
    ratio compares the two over the same minutes (a KDF's time drifts by ±10 % here)."""
    latencies: list[float] = []
    floors: list[float] = []
    refused = 0
    lock = threading.Lock()
    local = threading.local()

    def task(_: int) -> None:
        nonlocal refused
        if not hasattr(local, "client"):
            local.client = httpx.Client(
                base_url=url, verify=ssl.create_default_context(cafile=ca), timeout=60
            )
            local.agents = {}
        try:
            value = one_authentication(local.client, codes, local.agents)
        except ServiceError as exc:
            if exc.status != 429:
                raise
            with lock:
                refused += 1
            return
        with lock:
            latencies.append(value)
        if between is not None:
            floors.append(between())

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(task, range(total)))
    wall = time.perf_counter() - start - sum(floors) / 1000
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
        "floor": statistics.median(floors) if floors else 0,
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
    # a second group in the same organisation, enrolled with a cheap KDF (slots keep their
    # own parameters, so the server runs it for them alone)
    cheap_rt = open_runtime(
        Settings(data_dir=settings.data_dir, database_url=args.database_url, **CHEAP_KDF)  # type: ignore[arg-type]
    )
    cheap_people = holders(cheap_rt, 20, authenticators=8, first=args.holders)
    cheap_rt.close()
    cheap = Codes(cheap_people)
    database_work(settings, args.database_url, cheap)
    # a third group at OWASP's minimum KDF (the fourth row)
    owasp_rt = open_runtime(
        Settings(data_dir=settings.data_dir, database_url=args.database_url, **OWASP_KDF)  # type: ignore[arg-type]
    )
    owasp_people = holders(owasp_rt, 20, authenticators=8, first=args.holders + 20)
    owasp_kdf = owasp_rt.settings.argon2
    owasp_rt.close()
    port = free_port()
    env = {
        **os.environ,
        "CARDVAULT_DATA_DIR": str(settings.data_dir),
        "CARDVAULT_PORT": str(port),
        "CARDVAULT_KDF_QUEUE": str(2 * CORES),
        # one address signs in hundreds of times a minute here: the per-address and
        # per-identifier limits would answer 429 long before the KDF queue does
        "CARDVAULT_RATE_LIMITS_ENABLED": "false",
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
        report(settings, url, ca, Codes(people), cheap, args.per_level, server.pid)
        owasp(url, ca, Codes(owasp_people), owasp_kdf, args.per_level)
        command_lines()
        print_table()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)


def database_work(settings: Settings, database_url: str | None, codes: Codes) -> None:
    """Statements and transactions of one sign-in (code inline) and one signature, counted
    in this process on the same database (bench/_statements.py)."""
    options = {"rate_limits_enabled": False, **CHEAP_KDF}
    cheap = Settings(data_dir=settings.data_dir, database_url=database_url, **options)  # type: ignore[arg-type]
    signing_in, signing = statements.count(cheap, codes.take, codes.release)
    print(f"database work: a sign-in {signing_in}; a signature {signing}", flush=True)
    row(
        "statements (transactions) per sign-in / per signature",
        f"{len(signing_in.statements)} ({signing_in.transactions}) / "
        f"{len(signing.statements)} ({signing.transactions})",
        "fewer than 24 / 10",
    )


def _wait(url: str, ca: str) -> None:
    deadline = time.time() + 120  # a loaded machine starts the server slowly
    while time.time() < deadline:
        try:
            httpx.get(
                f"{url}/healthz", verify=ssl.create_default_context(cafile=ca), timeout=2
            ).raise_for_status()
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit("the server did not start")


def besides_cpu(url: str, ca: str, cheap: Codes, server_pid: int, *, sig_cpu: float) -> None:
    """The service's CPU per authentication besides the KDF and the signature, on holders
    whose slots use a 64 KiB, 1-pass Argon2id (its own CPU is subtracted too); and, while
    that runs, where the server's time goes."""
    run_level(url, ca, cheap, 1, 5)
    before = thread_cpu_seconds(server_pid)
    result: dict[str, float] = {}

    def measured() -> None:
        result.update(run_level(url, ca, cheap, 1, CPU_RUNS))

    parts = spy(server_pid, measured)
    after = thread_cpu_seconds(server_pid)
    if parts is None:
        print("(py-spy not on the PATH: the parts below are from cProfile, without HTTP/TLS)")
    if before is None or after is None or not result.get("n"):
        print("service CPU per authentication: not measurable here (no /proc)")
        return
    kdf = _cheap_kdf_ms()
    main = (after[0] - before[0]) / result["n"] * 1000
    work = (after[1] - before[1]) / result["n"] * 1000
    besides = main + work - kdf - sig_cpu
    print(
        f"service CPU per authentication besides the KDF and the signature: {besides:.1f} ms "
        f"(event loop: TLS, HTTP, routing {main:.1f} ms; workers: envelopes, database, audit "
        f"{work - kdf - sig_cpu:.1f} ms; {result['n']:.0f} sign-ins of holders with a cheap "
        f"KDF; {load()})"
    )
    row(
        "service CPU per authentication besides KDF + signature",
        f"{besides:.1f} ms (event loop {main:.1f}, workers {work - kdf - sig_cpu:.1f})",
        "≤ 3 ms",
    )
    if parts is not None:
        line = slowest(parts, "py-spy on the server, cheap-KDF sign-ins")
    else:
        line = slowest(profiled(lambda: run_level(url, ca, cheap, 1, 20)), "cProfile, client side")
    print(line)
    row("slowest three parts of a sign-in", line.split(": ", 1)[1], "-")


def _cheap_kdf_ms(runs: int = 50) -> float:
    params = Argon2Params(time_cost=1, memory_kib=64, parallelism=1)
    start = time.process_time()
    for _ in range(runs):
        derive_key(b"passcode", os.urandom(16), params)
    return (time.process_time() - start) / runs * 1000


def levels(
    url: str, ca: str, codes: Codes, argon2: Argon2Params, per_level: int
) -> tuple[float, float, dict[int, dict[str, float]]]:
    """Concurrency 1, cores and 2x cores against the floor at ``argon2``; returns the floor,
    the KDF ceiling (auths/s) and each level's result."""
    floor, kdf, sig, _floor_cpu = floor_ms(argon2)
    ceiling = CORES / (kdf / 1000)
    print(
        f"\nfloor: {floor:.1f} ms = Argon2id {kdf:.1f} ms + RSA-2048 signature {sig:.2f} ms "
        f"(m={argon2.memory_kib} KiB, t={argon2.time_cost}); "
        f"KDF ceiling {ceiling:.1f}/s on {CORES} cores; {load()}"
    )
    print(
        f"{'concurrency':>11} {'n':>4} {'p50 ms':>8} {'p50/floor':>9} {'p99 ms':>8} "
        f"{'p99/floor':>9} {'auth/s':>7} {'of ceiling':>10}"
    )
    run_level(url, ca, codes, 1, 3)  # warm up connections and caches
    key = ckeys.generate_private_key(ckeys.KeyAlgorithm.RSA2048)
    paired, out = 0.0, {}
    for level in (1, CORES, 2 * CORES):
        probe = (lambda: floor_sample(argon2, key)) if level == 1 else None
        r = run_level(url, ca, codes, level, per_level, between=probe)
        r["base"] = r["floor"] or floor
        paired = paired or r["floor"]
        out[level] = r
        print(
            f"{level:>11} {r['n']:>4.0f} {r['p50']:>8.1f} {r['p50'] / r['base']:>9.2f} "
            f"{r['p99']:>8.1f} {r['p99'] / r['base']:>9.2f} {r['throughput']:>7.1f} "
            f"{r['throughput'] / ceiling:>10.0%}",
            flush=True,
        )
    print(
        f"(at concurrency 1 the floor is the median of one KDF + signature taken after each "
        f"sign-in: {paired:.1f} ms; {load()})"
    )
    return floor, ceiling, out


def report(
    settings: Settings,
    url: str,
    ca: str,
    codes: Codes,
    cheap: Codes,
    per_level: int,
    server_pid: int,
) -> None:
    floor, ceiling, out = levels(url, ca, codes, settings.argon2, per_level)
    one = out[1]
    row("p50 at concurrency 1, x floor", f"{one['p50'] / one['base']:.2f}", "≤ 1.05")
    row(
        f"throughput at {CORES} and {2 * CORES} clients, % of the KDF ceiling",
        " and ".join(f"{out[n]['throughput'] / ceiling:.0%}" for n in (CORES, 2 * CORES)),
        "≥ 90 % at both",
    )
    _floor, _kdf, sig, _cpu = floor_ms(settings.argon2, runs=5)
    besides_cpu(url, ca, cheap, server_pid, sig_cpu=sig)
    rsa, ecdh, channel_ms = envelope_ms()
    print(
        f"opening one request envelope: RSA-OAEP-256 (RSA-3072) {rsa:.2f} ms, ECDH-ES+A256KW "
        f"(P-256) {ecdh:.2f} ms, session channel (dir, A256GCM) {channel_ms:.2f} ms; a sign-in "
        f"and a signature by cardvault's clients: {ecdh + channel_ms:.2f} ms = "
        f"{(ecdh + channel_ms) / floor:.1%} of the floor (two RSA envelopes: {2 * rsa:.2f} ms)"
    )
    level = 8 * CORES
    r = run_level(url, ca, codes, level, per_level)
    print(
        f"\noverload at concurrency {level} (queue {2 * CORES}): {r['n']:.0f} done, "
        f"{r['refused']:.0f} answered 429 + Retry-After, p99 {r['p99']:.1f} ms "
        f"({r['p99'] / floor:.2f}x floor)"
    )


def owasp(url: str, ca: str, codes: Codes, argon2: Argon2Params, per_level: int) -> None:
    """The same levels for holders at OWASP's minimum KDF (19 MiB x 2)."""
    print("\nholders at OWASP's minimum KDF:")
    _floor, ceiling, out = levels(url, ca, codes, argon2, per_level)
    best = max(r["throughput"] for r in out.values())
    one = out[1]
    row(
        f"OWASP minimum KDF: auths/s on {CORES} cores (ceiling {ceiling:.0f}/s), p50 x floor",
        f"{best:.1f}/s ({best / ceiling:.0%}), p50 {one['p50'] / one['base']:.2f}x",
        "≥ 90/s, p50 ≤ 1.20x",
    )


def command_lines(runs: int = 5) -> None:
    """Wall time of ``cardvault --help`` and ``cardvault-agent --help`` (median)."""
    times = []
    for name in ("cardvault", "cardvault-agent"):
        exe = str(Path(sys.executable).parent / name)
        samples = []
        for _ in range(runs):
            t = time.perf_counter()
            subprocess.run([exe, "--help"], check=True, capture_output=True)
            samples.append(time.perf_counter() - t)
        times.append(statistics.median(samples))
    print(f"\n--help wall time: cardvault {times[0]:.2f} s, cardvault-agent {times[1]:.2f} s")
    row(
        "cardvault --help / cardvault-agent --help",
        f"{times[0]:.2f} s / {times[1]:.2f} s",
        "≤ 0.3 s",
    )


def print_table() -> None:
    print(f"\nissue 16's table, this run ({load()}; targets are for an idle 2-core machine):")
    width = max(len(m) for m, _v, _t in TABLE)
    for measure, value, target in TABLE:
        print(f"  {measure:<{width}}  {value:<44}  target {target}")


if __name__ == "__main__":
    main()
