"""The PC/SC channel's speed (DESIGN §3.8): APDUs per second through pcscd + connector +
service, and one ``pkcs11-tool`` signature beside the same signature through the agent's API,
in the same run, against the same card and card session.

Everything is real: ``cardvault serve`` over TLS (its own process, SQLite unless
``--database-url``), the agent's connector as a process, pcscd with vpcd, OpenSC. The card is
issued with yubico-piv-tool through an RA's connector first. Key derivation uses the service's
production Argon2id parameters unless ``--fast-kdf``.

    python bench/pcsc.py [--runs 15] [--apdus 300] [--fast-kdf] [--database-url URL]

Prints numbers, not pass/fail. Last, the same 9A signature against the applet answering on
this PC (bench/_pcsc_floor.py): what OpenSC and pcscd cost by themselves, the floor under the
PC/SC time; and issue 16's PC/SC rows as ratios of this run (targets: a pkcs11-tool 9A
signature within 1.25x the floor, at least 800 APDUs per second answered by the service),
with the load average beside them.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from tests.support import factories as f  # noqa: E402
from tests.support import pcsc_stack as st  # noqa: E402

from _pcsc_floor import floor_signature  # noqa: E402
from _profile import spy  # noqa: E402
from cardvault.clients.agent import core  # noqa: E402
from cardvault.clients.agent.state import load  # noqa: E402
from cardvault.clients.common.api import CardvaultApi  # noqa: E402
from cardvault.config import Settings  # noqa: E402
from cardvault.services.audit import signing_key as audit_key  # noqa: E402
from cardvault.services.cards import enrolment, methods  # noqa: E402
from cardvault.services.pki import ca  # noqa: E402
from cardvault.services.system.runtime import Actor, keystore_for  # noqa: E402
from cardvault.services.transport import keys as transport_keys  # noqa: E402

NEW_KEY = "5f1e8a3c7b9d2e4f6a8c0e1b3d5f7a9c2e4b6d8f0a1c3e5b"
PIN, PUK = "31415926", "27182818"
#: GET DATA of the fingerprints (PIN-protected, never cached): always answered by the service.
#: (The VERIFY status query measured here before is answered by the connector once the PIN
#: is verified on the link, so it no longer measures the service for certain.)
SERVICE_APDU = "00:CB:3F:FF:05:5C:03:5F:C1:03:00"
CACHED_APDU = "00:CB:3F:FF:05:5C:03:5F:C1:02:00"  # GET DATA CHUID: answered by the connector
#: the same signature both ways: (label, PKCS#11 id, mechanism, API key, passcode for the API)
PAIRS = (
    ("9A authentication", "01", "SHA256-RSA-PKCS", "authentication", None),
    ("9C content commitment", "02", "ECDSA-SHA256", "content-commitment", st.STRONG_PASSCODE),
)

#: the parts of a relayed APDU (see _profile.part_of: the innermost matching frame wins)
RELAY_PARTS = (
    ("PIV applet", r"cardvault/card/"),
    ("master key seal/open", r"keystore/"),
    ("key slots, kept answer, PIN re-check", r"crypto/keyslots|crypto/aead|crypto/kdf|piv/kept"),
    ("channel envelope (JOSE)", r"joserfc|crypto/envelope\.py|crypto/channel\.py"),
    ("audit", r"services/audit/"),
    ("database (SQLAlchemy, driver)", r"sqlalchemy|sqlite3|psycopg"),
    ("pydantic", r"pydantic"),
    ("TLS", r"ssl\.py|SSLObject"),
    ("HTTP server (uvicorn)", r"uvicorn|h11|httptools"),
    ("thread hand-off", r"anyio|threading\.py|concurrent/futures|queue\.py"),
    ("FastAPI/Starlette", r"fastapi|starlette"),
    ("relay, other cardvault", r"cardvault"),
)


def main() -> None:
    args = _arguments()
    missing = st.missing_tools()
    if missing:
        sys.exit(f"PC/SC tools missing: {', '.join(missing)}")
    with tempfile.TemporaryDirectory(prefix="cardvault-bench-") as tmp:
        scratch = Path(tmp)
        with st.exclusive_pcsc(), st.pcscd_running():
            with _card_in_reader(scratch, args) as agent:
                api_9a, pcsc_9a, service_rate = _measure(agent, scratch, args)
            floor = floor_signature(scratch / "message.txt", args.runs)
            print(
                f"  9A pkcs11-tool against the applet on this PC, no service (the floor): "
                f"{floor * 1000:6.1f} ms -> {floor / api_9a:.2f} x API"
            )
    one, five, _ = os.getloadavg()
    print(f"\nissue 16's PC/SC rows, this run (load {one:.2f}/{five:.2f}; targets: idle machine):")
    print(
        f"  pkcs11-tool 9A signature / the same against the applet on the PC: "
        f"{pcsc_9a * 1000:.1f} / {floor * 1000:.1f} ms = {pcsc_9a / floor:.2f}  (target ≤ 1.25)"
    )
    print(f"  APDUs per second answered by the service: {service_rate:.0f}  (target ≥ 800)")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="signatures per method")
    parser.add_argument("--apdus", type=int, default=300, help="APDUs per throughput run")
    parser.add_argument("--fast-kdf", action="store_true", help="test Argon2id parameters")
    parser.add_argument("--database-url", help="default: SQLite in the scratch directory")
    parser.add_argument("--trace", action="store_true", help="print the APDUs of one signature")
    return parser.parse_args()


@contextmanager
def _card_in_reader(scratch: Path, args: argparse.Namespace) -> Iterator[st.Agent]:
    """A service, an issued and enrolled card, its holder signed in, the card in the reader."""
    data = _data_dir(scratch)
    env = {"CARDVAULT_DATABASE_URL": args.database_url or f"sqlite:///{scratch / 'bench.db'}"}
    if args.fast_kdf:
        env |= {
            "CARDVAULT_ARGON2_TIME_COST": "1",
            "CARDVAULT_ARGON2_MEMORY_KIB": "64",
            "CARDVAULT_INSECURE_TEST_KDF": "true",
        }
    service = st.start_service(data, env=env)
    try:
        holder = _issue_and_enrol(service, scratch)
        agent = st.Agent(service, scratch / "holder")
        agent.login(holder)
        connector = agent.connector(*(["-v"] if args.trace else []), log=scratch / "connector.log")
        try:
            st.wait_for(st.card_present, timeout=30, what="the card in the reader")
            yield agent
        finally:
            st.stop(connector)
    finally:
        service.stop()


def _data_dir(scratch: Path) -> Path:
    data = scratch / "data"
    settings = Settings(data_dir=data)
    master = keystore_for(settings).create()
    audit_key.create_audit_key(settings.keys_dir, master)
    transport_keys.create(settings.keys_dir, master)
    transport_keys.create(settings.keys_dir, master, ecdh=True)
    ca.create(data, master, common_name="cardvault Bench CA", organisation="cardvault bench")
    return data


def _issue_and_enrol(service: st.Service, scratch: Path) -> st.Person:
    operator = Actor.operator("bench")
    ra = st.create_ra(service.rt, operator)
    holder = st.create_holder(service.rt, operator)
    ra_agent = st.Agent(service, scratch / "ra")
    ra_agent.login(ra, "--ra", "--organisation", st.ORG, "--role", "ra_agent")
    log = scratch / "ra-connector.log"
    connector = ra_agent.connector("--issue-for", holder.user_id, "--org", st.ORG, log=log)
    try:
        st.wait_for(st.card_present, timeout=30, what="the blank card")
        st.wait_for(lambda: "Blank card CV" in log.read_text(), timeout=10, what="its serial")
        card_serial = log.read_text().split("Blank card ", 1)[1].split()[0]
        (scratch / "issuance").mkdir()
        st.personalise(
            service, scratch / "issuance", serial=card_serial, new_key=NEW_KEY, pin=PIN, puk=PUK
        )
        st.wait_for(lambda: "is issued" in log.read_text(), timeout=10, what="the issued card")
    finally:
        st.stop(connector)
    st.wait_for(lambda: not st.card_present(), timeout=10, what="the card to leave")
    enrolment.enrol(service.rt, operator, f.enrol_request(card_serial, issuance_passcode=PIN))
    totp = methods.add_totp(service.rt, operator, serial=card_serial, org_code=st.ORG)
    return st.Person(user_id=holder.user_id, email=holder.email, totp_secret=totp.secret)


# -- measurements --------------------------------------------------------------------------------


def _measure(
    agent: st.Agent, scratch: Path, args: argparse.Namespace
) -> tuple[float, float, float]:
    """Prints the measurements; returns the API's and pkcs11-tool's 9A signature times and
    the APDUs per second the service answered."""
    message = scratch / "message.txt"
    message.write_bytes(b"sign me, " * 10)
    digest = hashlib.sha256(message.read_bytes()).digest()
    state = load(agent.state_dir)
    print(f"cardvault PC/SC bench ({'test' if args.fast_kdf else 'production'} Argon2id)")
    rates = {}
    for name, apdu in (("service", SERVICE_APDU), ("connector cache", CACHED_APDU)):
        rates[name] = rate = _apdu_rate(apdu, args.apdus)
        print(f"  APDUs per second answered by the {name}: {rate:7.0f}")
    _where_it_goes(agent.service.process.pid, args.apdus)
    slot = str(st.token_slot())
    listing = partial(st.run, "pkcs11-tool", "--module", st.PKCS11, "--slot", slot, "-O")
    listing()
    floor = statistics.median(_timed(listing) for _ in range(args.runs))
    print(f"  pkcs11-tool -O (lists the card, uses no key): {floor * 1000:6.1f} ms")
    api_times: dict[str, float] = {}
    pcsc_times: dict[str, float] = {}
    with httpx.Client(base_url=agent.service.url, verify=agent.service.tls()) as client:
        api = CardvaultApi(client)
        for label, key_id, mechanism, key, passcode in PAIRS:
            pcsc = partial(_pkcs11_sign, slot, key_id, mechanism, message)
            via_api = partial(core.sign, api, state, digest=digest, key=key, passcode=passcode)
            if args.trace:
                _trace(scratch / "connector.log", pcsc)
            pcsc_time, api_time = _paired(args.runs, pcsc, via_api)
            api_times[key_id], pcsc_times[key_id] = api_time, pcsc_time
            print(
                f"  {label}: pkcs11-tool {pcsc_time * 1000:6.1f} ms, "
                f"agent API {api_time * 1000:6.1f} ms -> PC/SC = {pcsc_time / api_time:.2f} x API"
            )
    return api_times["01"], pcsc_times["01"], rates["service"]


def _where_it_goes(pid: int, count: int) -> None:
    """The service's busy samples (py-spy, all threads) while it answers APDUs, by part."""
    parts = spy(pid, lambda: _apdu_rate(SERVICE_APDU, count), RELAY_PARTS)
    if parts is None:
        print("  (no py-spy on the PATH: no breakdown of the service's time per APDU)")
        return
    total = sum(parts.values()) or 1
    shares = ", ".join(f"{name} {n / total:.0%}" for name, n in parts.most_common())
    print(f"  the service's busy time per relayed APDU, by part (py-spy): {shares}")


def _trace(log: Path, action: Callable[[], object]) -> None:
    before = log.read_text().count("\n")
    action()
    time.sleep(0.5)
    for line in log.read_text().splitlines()[before:]:
        print("    " + line[:160])


def _apdu_rate(apdu: str, count: int) -> float:
    """One opensc-tool process sending ``count`` APDUs on one connection."""
    args = ["opensc-tool", "--reader", st.READER]
    for _ in range(count):
        args += ["-s", apdu]
    once = _timed(lambda: st.run("opensc-tool", "--reader", st.READER, "-s", apdu))
    total = _timed(lambda: st.run(*args))
    return (count - 1) / max(total - once, 1e-9)


def _pkcs11_sign(slot: str, key_id: str, mechanism: str, message: Path) -> None:
    signature = message.with_suffix(".sig")
    st.run(
        "pkcs11-tool",
        "--module",
        st.PKCS11,
        "--slot",
        slot,
        "--login",
        "--pin",
        PIN,
        "--sign",
        "--id",
        key_id,
        "-m",
        mechanism,
        "-i",
        str(message),
        "-o",
        str(signature),
    )


def _paired(
    runs: int, one: Callable[[], object], other: Callable[[], object]
) -> tuple[float, float]:
    """Median wall times, the two taken in turns so that a busy machine slows both alike."""
    one(), other()  # warm up: TLS connection, OpenSC's file cache, the PIN re-check
    times = [(_timed(one), _timed(other)) for _ in range(runs)]
    return statistics.median(t for t, _ in times), statistics.median(t for _, t in times)


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
