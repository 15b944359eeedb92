"""A mixed workload through HAProxy with 1, 2 and 3 instances of the reference topology.

Starts its own topology (scripts/topology, test KDF parameters, its own folder and ports),
seeds 10,000 cards in its PostgreSQL, then for 1, 2 and 3 instances behind HAProxy runs the
same mix for a fixed time. Per holder: a sign-in, by passcode + TOTP (two sealed requests, one
KDF) or, for every PUSH_EVERY-th holder, by passcode + a push its paired phone (the
authenticator app's own client, holding its event stream to one instance) approves; four
signatures with the card's authentication key in that card session; the card PIN set in that
session (which builds the card's PIV applet), the card inserted into a reader link and two APDUs
relayed through it as the connector relays them for smartcard software (VERIFY of the PIN and
GET DATA of the CHUID); and one vRA Manager page.
Prints throughput and p50/p99 per operation, the scale-out factor against one instance, and
the KDF ceiling of the cores (cores / one derivation at the topology's parameters).

Seeding shortcut (documented in docs/operator/deployment.md): HOLDERS real holders are made by
the service's own functions (the ones the workload signs in as); the rest of the 10,000 are
filler cards of one filler person in another organisation, copied row by row in one INSERT …
SELECT from a real card (they are never opened: they give the tables and indexes the size of
10,000 cards without 10,000 key generations).

Usage: .venv/bin/python bench/load.py [--seconds 15] [--workers 6] [--cards 10000] [--holders 200]
Needs root or a PostgreSQL-capable user, haproxy and redis-server (scripts/install-system-deps).
The instances share this machine's cores, so the table shows the cost of scale-out, not its gain.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import os
import socket
import statistics
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import TypeVar

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import auth
from tests.support import factories as f
from tests.support.app_phone import Phone, paired
from tests.support.auth import HolderFixture
from tests.support.piv_fakes import verify_apdu
from tests.support.topology import Topology, push_sign_in, running, sign, sign_in

from cardvault.clients.agent.pin_cmd import set_pin
from cardvault.clients.agent.state import AgentState
from cardvault.clients.common.api import CardvaultApi
from cardvault.clients.connector.relay import ServiceRelay
from cardvault.clients.connector.runner import insert_for_holder
from cardvault.crypto.kdf import Argon2Params, derive_key
from cardvault.services.system.runtime import Actor, Runtime

PORT = 18640
ORG, FILLER_ORG = "LOAD", "FILL"
SIGNATURES = 4
#: every PUSH_EVERY-th holder signs in by push (a paired phone), the others by TOTP
PUSH_EVERY = 4
CARD_PIN = "24681357"
VERIFY_PIN = verify_apdu(CARD_PIN.encode())
GET_CHUID = bytes.fromhex("00cb3fff055c035fc10200")
GET_RESPONSE = bytes.fromhex("00c00000")
OPERATIONS = (
    "sign-in TOTP",
    "sign-in push",
    "signature",
    "PIN set",
    "reader link",
    "PC/SC relay",
    "RA page",
)
CORES = os.cpu_count() or 1
T = TypeVar("T")


def seed(
    topo: Topology, holders: int, cards: int, phones: ExitStack
) -> tuple[list[HolderFixture], dict[str, Phone]]:
    """The holders the workload signs in as, every PUSH_EVERY-th with a paired phone (open
    until ``phones`` closes), and the filler cards."""
    rt = topo.runtime()
    try:
        actor = Actor.operator("bench")
        for code in (ORG, FILLER_ORG):  # P-256 cards: seeding is not an RSA benchmark
            f.org(rt, actor, code, networks=auth.LOOPBACK, policy={"key_algorithm": "ecp256"})
        start = time.monotonic()
        with ThreadPoolExecutor(max_workers=CORES) as pool:
            made = list(pool.map(lambda _i: auth.holder(rt, actor, ORG), range(holders)))
        took = time.monotonic() - start
        print(f"  {holders} holders made by the service's functions in {took:.1f} s")
        start = time.monotonic()
        paired_phones = {
            h.email: phones.enter_context(
                paired(
                    topo.url,
                    rt,
                    actor,
                    serial=h.card.serial,
                    org_code=ORG,
                    name="bench phone",
                    verify=topo.tls(),
                )
            )
            for h in made[::PUSH_EVERY]
        }
        print(f"  {len(paired_phones)} phones paired in {time.monotonic() - start:.1f} s")
        start = time.monotonic()
        filler = f.active_card(rt, actor, FILLER_ORG, email="filler@bench.example")
        _copy_card(rt, filler.serial, cards - holders - 1)
        print(f"  {cards - holders} filler cards in {time.monotonic() - start:.1f} s")
        return made, paired_phones
    finally:
        rt.engine.dispose()


def _copy_card(rt: Runtime, serial: str, count: int) -> None:
    """Copies of one card's row with new ids and serials (PostgreSQL), in one statement."""
    from sqlalchemy import text

    from cardvault.store.models import table_of
    from cardvault.store.models.cards import Card

    columns = [c.name for c in table_of(Card).columns]
    chosen = {"id": "gen_random_uuid()::text", "serial": "'CVF' || lpad(n::text, 9, '0')"}
    select = ", ".join(chosen.get(c, c) for c in columns)
    with rt.engine.begin() as conn:
        conn.execute(
            text(
                # column names from the model, not from input: nothing to inject
                f"INSERT INTO cards ({', '.join(columns)}) SELECT {select} FROM cards, "  # noqa: S608
                "generate_series(1, :count) AS n WHERE serial = :serial"
            ),
            {"count": count, "serial": serial},
        )


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.times: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        #: the first error of each operation, printed under the table
        self.first_error: dict[str, str] = {}
        self.elapsed = 0.0

    def timed(self, op: str, call: Callable[[], T]) -> T:
        start = time.perf_counter()
        try:
            result = call()
        except Exception as exc:
            with self.lock:
                self.errors[op] += 1
                self.first_error.setdefault(op, f"{type(exc).__name__}: {exc}")
            raise
        with self.lock:
            self.times[op].append(time.perf_counter() - start)
        return result


def workload(
    topo: Topology,
    holders: list[HolderFixture],
    phones: dict[str, Phone],
    seconds: float,
    workers: int,
) -> Recorder:
    rec = Recorder()
    queue = list(holders)  # one sign-in per holder: a TOTP step is used once
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker() -> None:
        with topo.client() as http:
            api = CardvaultApi(http)
            while time.monotonic() < stop:
                with lock:
                    if not queue:
                        return
                    h = queue.pop()
                # a failed operation is counted as its error; the worker goes on
                with contextlib.suppress(Exception):
                    one_holder(api, http, h)

    def one_holder(api: CardvaultApi, http: httpx.Client, h: HolderFixture) -> None:
        phone = phones.get(h.email)
        if phone is None:
            session = rec.timed(
                "sign-in TOTP",
                lambda: sign_in(api, topo.url, h.email, f.STRONG_PASSCODE, h.code()),
            )
        else:
            phone.listen()  # the app's event stream, open before the agent asks (once=True)
            session = rec.timed("sign-in push", lambda: pushed_sign_in(phone, h))
            phone.finish()  # the app's thread ends after its one answer
        for n in range(SIGNATURES):
            digest = hashlib.sha256(f"{h.email}{n}".encode()).digest()
            rec.timed("signature", lambda d=digest: sign(api, session, d))
        pcsc_relay(api, session)
        rec.timed("RA page", lambda: http.get("/ra").raise_for_status())

    def pushed_sign_in(phone: Phone, h: HolderFixture) -> AgentState:
        notes: list[str] = []
        session = push_sign_in(topo, h.email, phone, notes, _no_code)
        if notes:
            raise RuntimeError(f"push sign-in of {h.email}: {notes}")
        return session

    def pcsc_relay(api: CardvaultApi, session: AgentState) -> None:
        api.use_channel(session.channel_id, session.channel_key)
        rec.timed("PIN set", lambda: set_pin(api, session, CARD_PIN))
        inserted = rec.timed(
            "reader link",
            lambda: insert_for_holder(api, token=session.token, session_key=session.session_key),
        )
        relay = ServiceRelay(api, inserted.credentials)
        for apdu in (VERIFY_PIN, GET_CHUID):
            rec.timed("PC/SC relay", lambda a=apdu: _exchange(relay, a))

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rec.elapsed = time.monotonic() - started
    return rec


def _exchange(relay: ServiceRelay, apdu: bytes) -> bytes:
    """One command as a PC/SC tool sends it: GET RESPONSE while the card says more data
    waits (61xx); its whole answer, or an error when the status word is not 9000."""
    data = b""
    response = relay.relay(apdu)
    while response[-2:-1] == b"\x61":
        data += response[:-2]
        response = relay.relay(GET_RESPONSE + response[-1:])
    if response[-2:] != b"\x90\x00":
        raise RuntimeError(f"the relayed APDU answered {response[-2:].hex()}")
    return data + response


def _no_code() -> str:
    raise RuntimeError("the agent fell back to the one-time code: the push did not reach")


def set_instances(topo: Topology, n: int) -> None:
    """Instances 1..n in the load balancer, the rest in maintenance (HAProxy's runtime API)."""
    for i in (1, 2, 3):
        state = "ready" if i <= n else "maint"
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(topo.state / "run" / "haproxy.sock"))
            sock.sendall(f"set server instances/i{i} state {state}\n".encode())
            sock.recv(4096)


def kdf_ceiling(memory_kib: int, time_cost: int) -> float:
    params = Argon2Params(time_cost=time_cost, memory_kib=memory_kib, parallelism=1)
    runs = [time.perf_counter()]
    for _ in range(20):
        derive_key(b"passcode", os.urandom(16), params)
        runs.append(time.perf_counter())
    one = statistics.median(b - a for a, b in itertools.pairwise(runs))
    return CORES / one


def report(n: int, rec: Recorder, base: float | None) -> float:
    total = sum(len(v) for v in rec.times.values()) / rec.elapsed
    print(
        f"\n{n} instance(s): {total:.1f} operations/s over {rec.elapsed:.1f} s"
        + (f"; scale-out factor {total / base:.2f} against 1 instance" if base else "")
    )
    print(f"  {'operation':12} {'count':>6} {'per s':>7} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}")
    for op in OPERATIONS:
        t = sorted(rec.times.get(op, [0.0]))
        p99 = t[min(len(t) - 1, int(len(t) * 0.99))]
        count = len(rec.times.get(op, []))
        print(
            f"  {op:12} {count:>6} {count / rec.elapsed:>7.1f} "
            f"{statistics.median(t) * 1000:>8.1f} {p99 * 1000:>8.1f} {rec.errors.get(op, 0):>6}"
        )
    for op, problem in rec.first_error.items():
        print(f"  first {op} error: {problem[:300]}")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--workers", type=int, default=6)
    parser.add_argument("--cards", type=int, default=10_000)
    parser.add_argument("--holders", type=int, default=200)
    args = parser.parse_args()
    print(
        "Starting the reference topology (test KDF parameters: 1 MiB, 1 pass — insecure, "
        "for benchmarks only) …",
        flush=True,
    )
    with running(PORT, "CARDVAULT_RATE_LIMITS_ENABLED=false") as topo, ExitStack() as phones:
        holders, paired_phones = seed(topo, args.holders, args.cards, phones)
        ceiling = kdf_ceiling(1024, 1)
        print(
            f"KDF ceiling of {CORES} cores at the test parameters: {ceiling:.0f} sign-ins/s "
            "(each sign-in runs one Argon2id)"
        )
        base = None
        group = len(holders) // 3  # each run its own holders: a TOTP step is used once
        for n in (1, 2, 3):
            set_instances(topo, n)
            time.sleep(2.5)
            rec = workload(
                topo,
                holders[(n - 1) * group : n * group],
                paired_phones,
                args.seconds,
                args.workers,
            )
            total = report(n, rec, base)
            base = base or total
        print(f"\nload average: {os.getloadavg()[0]:.2f} (the machine is shared: compare ratios)")


if __name__ == "__main__":
    main()
