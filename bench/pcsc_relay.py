"""The PC/SC relay's own cost, in this process: one APDU as the ``/api/v1/piv/apdu`` route
runs it -- open the link's channel envelope, relay the APDU, seal the answer -- without
HTTP, TLS, pcscd or the connector (bench/pcsc.py measures those too).

    python bench/pcsc_relay.py [--apdus 400] [--database-url URL] [--profile]

Prints the APDUs per second one thread gets, the statements and transactions each APDU
sends to the database, and with ``--profile`` the functions that take the time (cProfile).
The card is issued and personalised through the relay, its holder signed in, the card PIN
verified on the link; the measured APDU is a GET DATA of a PIN-protected object, which only
the service answers.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import os
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support import auth as a  # noqa: E402
from tests.support import piv_service as p  # noqa: E402
from tests.support.databases import NO_RATE_LIMITS, TEST_ARGON2  # noqa: E402

from cardvault.config import Settings  # noqa: E402
from cardvault.crypto import channel as cchannel  # noqa: E402
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
from cardvault.web.jose import opened_on_link, sealed  # noqa: E402

#: GET DATA of the fingerprints object: PIN-protected, so never answered by the connector
SERVICE_APDU = bytes.fromhex("00CB3FFF055C035FC10300")


def main() -> None:
    args = _arguments()
    scratch = Path(tempfile.mkdtemp(prefix="cardvault-relay-"))
    try:
        rt = _runtime(scratch, args.database_url)
        try:
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
    return parser.parse_args()


def _runtime(scratch: Path, url: str | None) -> Runtime:
    data = scratch / "data"
    settings = Settings(data_dir=data)
    master = keystore_for(settings).create()
    audit_key.create_audit_key(settings.keys_dir, master)
    transport_keys.create(settings.keys_dir, master)
    ca.create(data, master, common_name="cardvault Bench CA", organisation="cardvault bench")
    options = {**TEST_ARGON2, **NO_RATE_LIMITS}
    database = url or f"sqlite:///{scratch / 'bench.db'}"
    settings = Settings(data_dir=data, database_url=database, **options)  # type: ignore[arg-type]
    return open_runtime(settings, migrate=True)


class Link:
    """The connector's side of one link: its channel key and sequence numbers."""

    def __init__(self, rt: Runtime, use: p.InUse) -> None:
        self.rt, self.use = rt, use
        self.key = channel.link_key(rt, use.reader.link_id)
        self.seq = use.reader.seq
        self.actor = a.client()

    def send(self, apdu: bytes) -> dict[str, object]:
        """What the route does with one APDU, given the envelope the connector sealed."""
        self.seq += 1
        claims = {
            "token": self.use.token,
            "session_key": base64.b64encode(self.use.session_key).decode(),
            "link_id": self.use.reader.link_id,
            "seq": self.seq,
            "apdu": base64.b64encode(apdu).decode(),
        }
        kid = self.use.reader.link_id
        token, jti = cchannel.seal_channel_request(self.key, kid, claims, now=time.time())
        body, rkey, ch = opened_on_link(self.rt, token, ApduIn)
        req = _relay_request(Mode.USE, body, _key(body), ch)
        out = _apdu_out(relay(self.rt, self.actor, req))
        answer = sealed(rkey, out).body
        return cchannel.open_channel_response(self.key, kid, jti, bytes(answer).decode())


def _round(link: Link, count: int) -> tuple[float, float]:
    """Wall and CPU seconds per APDU over ``count`` APDUs."""
    started, cpu = time.perf_counter(), time.thread_time()
    for _ in range(count):
        link.send(SERVICE_APDU)
    return (time.perf_counter() - started) / count, (time.thread_time() - cpu) / count


def _key(body: ApduIn) -> bytes:
    return base64.b64decode(body.session_key)


def _bench(rt: Runtime, args: argparse.Namespace) -> None:
    use = p.issued_and_enrolled(rt, Actor.operator("bench"), Engine(rt))
    assert use.reader.verify() == 0x9000
    link = Link(rt, use)
    for _ in range(20):  # warm up: statement caches, the pool
        link.send(SERVICE_APDU)
    with counted(rt.engine) as count:
        link.send(SERVICE_APDU)
    print(f"cardvault PC/SC relay in-process ({rt.engine.dialect.name})")
    print(f"  one APDU: {count}")
    for sql in count.statements:
        print(f"    {' '.join(sql.split())[:110]}")
    rounds = [_round(link, args.apdus) for _ in range(args.rounds)]
    wall, cpu = min(r[0] for r in rounds), min(r[1] for r in rounds)
    print(
        f"  one thread, best of {args.rounds} rounds of {args.apdus}: {1 / wall:.0f} APDUs per "
        f"second, {cpu * 1000:.2f} ms of CPU each (load {os.getloadavg()[0]:.1f})"
    )
    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(lambda: [link.send(SERVICE_APDU) for _ in range(args.apdus)])
        stats = pstats.Stats(profile)
        stats.sort_stats("cumulative").print_stats(45)
        stats.sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
