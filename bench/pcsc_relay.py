"""The PC/SC relay's own cost, in this process: one APDU as the ``/api/v1/piv/apdu`` route
runs it -- open the link's channel envelope, relay the APDU, seal the answer -- without
HTTP, TLS, pcscd or the connector (bench/pcsc.py measures those too).

    python bench/pcsc_relay.py [--apdus 400] [--database-url URL] [--profile] [--http]

Prints the APDUs per second one thread gets, the statements and transactions each APDU
sends to the database, and with ``--profile`` the functions that take the time (cProfile).
With ``--http`` the APDUs go to ``cardvault serve`` (its own process, TLS, one kept-alive
connection) as the connector sends them, still without pcscd: then the server's CPU per
APDU is printed too, and with ``--profile`` its busy time by part (py-spy). With ``--asgi``
the whole app is served by uvicorn in this process (plain HTTP) and the Python function
calls its threads make per APDU are counted: the web stack's cost, which the load does not
change.
The card is issued and personalised through the relay, its holder signed in, the card PIN
verified on the link; the measured APDU is a GET DATA of a PIN-protected object, which only
the service answers.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import itertools
import os
import pstats
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from tests.support import auth as a  # noqa: E402
from tests.support import pcsc_stack as st  # noqa: E402
from tests.support import piv_service as p  # noqa: E402
from tests.support.databases import NO_RATE_LIMITS, TEST_ARGON2  # noqa: E402
from tests.support.live_server import serve  # noqa: E402

from _profile import spy  # noqa: E402
from cardvault.config import Settings  # noqa: E402
from cardvault.crypto import channel as cchannel  # noqa: E402
from cardvault.json_types import JsonObject  # noqa: E402
from cardvault.services.audit import signing_key as audit_key  # noqa: E402
from cardvault.services.piv.ports import Mode  # noqa: E402
from cardvault.services.piv.relay import relay  # noqa: E402
from cardvault.services.pki import ca  # noqa: E402
from cardvault.services.signin.engine import Engine  # noqa: E402
from cardvault.services.system.runtime import Actor, Runtime, keystore_for, open_runtime  # noqa: E402
from cardvault.services.transport import channel  # noqa: E402
from cardvault.services.transport import keys as transport_keys  # noqa: E402
from cardvault.store.statements import counted  # noqa: E402
from cardvault.web.api.piv import ApduIn, _apdu_out, _relay_request  # noqa: E402
from cardvault.web.app import create_app  # noqa: E402
from cardvault.web.jose import JOSE, opened_on_link, sealed  # noqa: E402
from pcsc import RELAY_PARTS  # noqa: E402

#: GET DATA of the fingerprints object: PIN-protected, so never answered by the connector
SERVICE_APDU = bytes.fromhex("00CB3FFF055C035FC10300")


def main() -> None:
    args = _arguments()
    scratch = Path(tempfile.mkdtemp(prefix="cardvault-relay-"))
    try:
        if args.http:
            with _served(scratch, args.database_url) as (service, client):
                _bench(service.rt, args, client, service.process.pid)
            return
        rt = _runtime(scratch, args.database_url)
        try:
            if args.asgi:
                with _served_here(rt) as (client, calls):
                    _bench(rt, args, client, calls=calls)
            else:
                _bench(rt, args)
        finally:
            rt.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apdus", type=int, default=200, help="APDUs per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (the best is shown)")
    parser.add_argument("--database-url", help="default: SQLite in a scratch directory")
    parser.add_argument("--profile", action="store_true", help="print the top functions")
    parser.add_argument("--http", action="store_true", help="through `cardvault serve`")
    parser.add_argument("--asgi", action="store_true", help="served here: count its calls")
    return parser.parse_args()


def _data_dir(scratch: Path) -> Path:
    data = scratch / "data"
    settings = Settings(data_dir=data)
    master = keystore_for(settings).create()
    audit_key.create_audit_key(settings.keys_dir, master)
    transport_keys.create(settings.keys_dir, master)
    ca.create(data, master, common_name="cardvault Bench CA", organisation="cardvault bench")
    return data


@contextmanager
def _served(scratch: Path, url: str | None) -> Iterator[tuple[st.Service, httpx.Client]]:
    """``cardvault serve`` on the bench's data, and one kept-alive TLS connection to it."""
    options = {**TEST_ARGON2, **NO_RATE_LIMITS}
    env = {f"CARDVAULT_{k.upper()}": str(v).lower() for k, v in options.items()}
    env["CARDVAULT_DATABASE_URL"] = url or f"sqlite:///{scratch / 'bench.db'}"
    service = st.start_service(_data_dir(scratch), env=env)
    try:
        with httpx.Client(base_url=service.url, verify=service.tls()) as client:
            yield service, client
    finally:
        service.stop()


class _Calls:
    """Counts the function calls (Python and C) of every thread started once installed:
    the server's, not this one's (the client's)."""

    def __init__(self) -> None:
        self._seen = itertools.count()

    def __call__(self, _frame: object, event: str, _arg: object) -> None:
        if event in ("call", "c_call"):
            next(self._seen)  # atomic under the GIL, unlike += 1

    def now(self) -> int:
        return next(self._seen)


@contextmanager
def _served_here(rt: Runtime) -> Iterator[tuple[httpx.Client, _Calls]]:
    """The whole app on uvicorn in this process, its threads' calls counted."""
    calls = _Calls()
    threading.setprofile(calls)
    try:
        with serve(create_app(rt)) as url, httpx.Client(base_url=url) as client:
            yield client, calls
    finally:
        threading.setprofile(None)


def _runtime(scratch: Path, url: str | None) -> Runtime:
    data = _data_dir(scratch)
    options = {**TEST_ARGON2, **NO_RATE_LIMITS}
    database = url or f"sqlite:///{scratch / 'bench.db'}"
    settings = Settings(data_dir=data, database_url=database, **options)  # type: ignore[arg-type]
    return open_runtime(settings, migrate=True)


class Link:
    """The connector's side of one link: its channel key and sequence numbers."""

    def __init__(self, rt: Runtime, use: p.InUse, http: httpx.Client | None = None) -> None:
        self.rt, self.use, self.http = rt, use, http
        self.key = channel.link_key(rt, use.reader.link_id)
        self.seq = use.reader.seq
        self.actor = a.client()

    def send(self, apdu: bytes) -> JsonObject:
        """What the route does with one APDU, given the envelope the connector sealed."""
        self.seq += 1
        claims: JsonObject = {
            "token": self.use.token,
            "session_key": base64.b64encode(self.use.session_key).decode(),
            "link_id": self.use.reader.link_id,
            "seq": self.seq,
            "apdu": base64.b64encode(apdu).decode(),
        }
        kid = self.use.reader.link_id
        token, jti = cchannel.seal_channel_request(self.key, kid, claims, now=time.time())
        if self.http is not None:
            answered = self.http.post(
                "/api/v1/piv/apdu", content=token, headers={"content-type": JOSE}
            )
            assert answered.status_code == 200, answered.text
            return cchannel.open_channel_response(self.key, kid, jti, answered.text)
        body, rkey, ch = opened_on_link(self.rt, token, ApduIn)
        req = _relay_request(Mode.USE, body, _key(body), ch)
        out = _apdu_out(relay(self.rt, self.actor, req))
        answer = sealed(rkey, out).body
        return cchannel.open_channel_response(self.key, kid, jti, bytes(answer).decode())


def _round(link: Link, count: int, server: int | None) -> tuple[float, float]:
    """Wall and CPU seconds per APDU over ``count`` APDUs: this thread's CPU, or with a
    ``server`` process id, that process's (all its threads)."""
    started, cpu = time.perf_counter(), _cpu(server)
    for _ in range(count):
        link.send(SERVICE_APDU)
    return (time.perf_counter() - started) / count, (_cpu(server) - cpu) / count


def _calls(link: Link, count: int = 50) -> float:
    """Function calls per APDU (cProfile's count, this thread): a measure the machine's load
    does not change, for before and after on a shared machine."""
    profile = cProfile.Profile()
    profile.runcall(lambda: [link.send(SERVICE_APDU) for _ in range(count)])
    return float(pstats.Stats(profile).total_calls) / count  # type: ignore[attr-defined]


def _cpu(pid: int | None) -> float:
    """CPU seconds of this thread, or of process ``pid`` (user + system, from /proc)."""
    if pid is None:
        return time.thread_time()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _key(body: ApduIn) -> bytes:
    return base64.b64decode(body.session_key)


def _bench(
    rt: Runtime,
    args: argparse.Namespace,
    http: httpx.Client | None = None,
    server: int | None = None,
    calls: _Calls | None = None,
) -> None:
    use = p.issued_and_enrolled(rt, Actor.operator("bench"), Engine(rt))
    assert use.reader.verify() == 0x9000
    link = Link(rt, use, http)
    for _ in range(20):  # warm up: statement caches, the pool
        link.send(SERVICE_APDU)
    where = "through `cardvault serve` (TLS)" if server else "served here" if http else "in-process"
    print(f"cardvault PC/SC relay {where} ({rt.engine.dialect.name})")
    if http is None:  # the server's statements are not seen from here
        with counted(rt.engine) as count:
            link.send(SERVICE_APDU)
        print(f"  one APDU: {count}")
        for sql in count.statements:
            print(f"    {' '.join(sql.split())[:110]}")
    rounds = [_round(link, args.apdus, server) for _ in range(args.rounds)]
    wall, cpu = min(r[0] for r in rounds), min(r[1] for r in rounds)
    whose = "the server's" if server else "the client's" if http else "this thread's"
    print(
        f"  one thread, best of {args.rounds} rounds of {args.apdus}: {1 / wall:.0f} APDUs per "
        f"second, {cpu * 1000:.2f} ms of {whose} CPU each (load {os.getloadavg()[0]:.1f})"
    )
    if http is None:
        print(f"  Python function calls per APDU (does not depend on load): {_calls(link):.0f}")
    if calls is not None:
        before = calls.now()
        _round(link, args.apdus, None)
        served = (calls.now() - before) / args.apdus
        print(f"  function calls of the server's threads per APDU (not the load's): {served:.0f}")
    if args.profile and server is not None:
        parts = spy(server, lambda: _round(link, args.apdus, None), RELAY_PARTS) or Counter()
        total = sum(parts.values()) or 1
        shares = ", ".join(f"{n} {c / total:.0%}" for n, c in parts.most_common())
        print(f"  the server's busy time by part (py-spy): {shares or 'no py-spy'}")
    elif args.profile:
        profile = cProfile.Profile()
        profile.runcall(lambda: [link.send(SERVICE_APDU) for _ in range(args.apdus)])
        stats = pstats.Stats(profile)
        stats.sort_stats("cumulative").print_stats(45)
        stats.sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
