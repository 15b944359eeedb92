"""The per-card second-factor lock (DESIGN §3.3 revised, issue 14) on SQLite and PostgreSQL:
five wrong second-factor answers in a row, across any transactions and doors, lock the card,
email the holder the lock link and alert the organisation's RAs; a right one resets the
count; concurrent answers on two instances are counted exactly."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import httpx
import pyotp
import pytest
from sqlalchemy import func, select
from tests.support import auth as a
from tests.support import factories as f
from tests.support import phones as ph
from tests.support.notify_servers import SmtpServer
from tests.support.portal import smtp_dispatcher, token_in

from cardvault.clients.agent import core
from cardvault.clients.common.api import CardvaultApi, ServiceError
from cardvault.config import Settings
from cardvault.domain.lockout import SECOND_FACTOR_LOCK_REASON
from cardvault.errors import CardvaultError
from cardvault.services.devices.errors import BiometricUnlockFailed, WrongNumber
from cardvault.services.directory import registry as directory
from cardvault.services.recovery import reset as recovery
from cardvault.services.signin import factor_lockout
from cardvault.services.signin.engine import Engine
from cardvault.services.signin.errors import FactorFailed, SignInFailed
from cardvault.services.signin.factors import FactorAnswer
from cardvault.services.signin.kdf_gate import KdfGate
from cardvault.services.system.runtime import Actor, Runtime, open_runtime
from cardvault.store.models import AuditEvent, Card, CardSession, Notification

RA_EMAIL = "ra.alerts@example.org"


@pytest.fixture
def holder(rt: Runtime, operator: Actor) -> a.HolderFixture:
    """A holder with an authenticator app in ORG1, whose RA manager has an email address."""
    a.open_org(rt, operator)
    ra = f.person(rt, operator, "ORG1", forename="Rhea", email=RA_EMAIL)
    directory.grant_role(rt, operator, user_id=ra, org_code="ORG1", role="ra_manager")
    return a.holder(rt, operator, forename="Ann")


def wrong_code(secret: str) -> str:
    """A code no time step near now matches."""
    now = time.time()
    near = {pyotp.TOTP(secret).at(now + s) for s in range(-150, 151, 30)}
    return next(c for c in (f"{d}" * 6 for d in range(10)) if c not in near)


def card(rt: Runtime, card_id: str) -> Card:
    with rt.db() as s:
        row = s.get(Card, card_id)
        assert row is not None
        return row


def reasons(rt: Runtime, card_id: str, reason: str) -> int:
    with rt.db() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.card_id == card_id, AuditEvent.reason == reason)
            )
            or 0
        )


def queued(rt: Runtime, template: str) -> list[Notification]:
    with rt.db() as s:
        return list(s.scalars(select(Notification).where(Notification.template == template)))


def wrong_in_a_fresh_transaction(engine: Engine, h: a.HolderFixture) -> FactorFailed:
    txn = a.login(engine, h).transaction_id
    with pytest.raises(FactorFailed) as refused:
        engine.complete_factor(
            a.client(), txn, FactorAnswer(method="totp", code=wrong_code(h.totp_secret))
        )
    return refused.value


def test_five_wrong_codes_in_fresh_transactions_lock_the_card_at_the_fifth(
    rt: Runtime, holder: a.HolderFixture
) -> None:
    engine = Engine(rt)
    card_id = holder.card.card_id
    for n in range(1, 5):
        assert wrong_in_a_fresh_transaction(engine, holder).code == "totp_wrong"
        assert (card(rt, card_id).status, factor_lockout.current(rt, card_id)) == ("active", n)
    assert not queued(rt, "card_locked")

    fifth = wrong_in_a_fresh_transaction(engine, holder)

    assert fifth.code == "second_factor_locked"
    assert "now locked" in fifth.message
    locked = card(rt, card_id)
    assert (locked.status, locked.lock_reason, locked.second_factor_failures) == (
        "locked",
        SECOND_FACTOR_LOCK_REASON,
        5,
    )
    assert reasons(rt, card_id, "TOTP code wrong") == 5
    (mail,) = queued(rt, "card_locked")
    assert (mail.recipient, mail.context["cause"]) == (holder.email, "second_factor")
    (alert,) = queued(rt, "second_factor_alert")
    assert alert.recipient == RA_EMAIL
    # the right passcode and the right code no longer open it: refused as a wrong passcode
    with pytest.raises(SignInFailed):
        a.login(engine, holder, code=holder.code())
    with rt.db() as s:
        assert s.scalar(select(func.count()).select_from(CardSession)) == 0


def test_a_right_second_factor_resets_the_count(rt: Runtime, holder: a.HolderFixture) -> None:
    engine = Engine(rt)
    for _ in range(4):
        wrong_in_a_fresh_transaction(engine, holder)
    txn = a.login(engine, holder).transaction_id
    engine.complete_factor(a.client(), txn, FactorAnswer(method="totp", code=holder.code()))
    assert factor_lockout.current(rt, holder.card.card_id) == 0
    for _ in range(4):
        wrong_in_a_fresh_transaction(engine, holder)
    assert card(rt, holder.card.card_id).status == "active"


def test_answers_that_check_nothing_give_their_reservation_back(
    rt: Runtime, holder: a.HolderFixture
) -> None:
    engine = Engine(rt)
    txn = a.login(engine, holder).transaction_id
    for response in (
        FactorAnswer(method="totp"),  # no code
        FactorAnswer(method="totp", code="12ab"),  # malformed
        FactorAnswer(method="carrier-pigeon"),  # not offered
    ):
        with pytest.raises(CardvaultError):
            engine.complete_factor(a.client(), txn, response)
    assert factor_lockout.current(rt, holder.card.card_id) == 0


def test_the_lock_email_reaches_the_holder_and_its_link_resets_the_card(
    rt: Runtime,
    holder: a.HolderFixture,
    smtp_server: SmtpServer,
) -> None:
    engine = Engine(rt)
    for _ in range(5):
        wrong_in_a_fresh_transaction(engine, holder)

    report = smtp_dispatcher(rt, smtp_server.port).drain()

    assert report.sent == 2
    by_rcpt = {m.rcpt_tos[0]: m.message for m in smtp_server.mailbox.received}
    to_holder, to_ra = by_rcpt[holder.email], by_rcpt[RA_EMAIL]
    text = to_holder.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "locked" in str(to_holder["Subject"])
    assert "wrong second factor" in text
    assert "five times in a row" in text
    page = recovery.open_reset(rt, token_in(text))  # a second-factor lock is self-service
    assert page.holder_name == "Ann"
    ra_text = to_ra.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "fifth wrong second factor in a row" in ra_text
    assert "while signing in" in ra_text


def test_the_agents_sign_in_over_http_counts_and_locks(
    rt: Runtime, holder: a.HolderFixture, live_url: str
) -> None:
    """The API door, as the agent uses it: the code goes to /auth/factor as ``code``."""
    data = core.LoginInput(
        identifier_kind="email", identifier=holder.email, passcode=f.STRONG_PASSCODE
    )
    wrong = wrong_code(holder.totp_secret)
    problems = []
    with httpx.Client(base_url=live_url, timeout=30) as http:
        for _ in range(5):
            with pytest.raises(ServiceError) as refused:
                core.login(CardvaultApi(http), "test", data, totp=wrong, ask_code=lambda _: "")
            problems.append(refused.value.problem)
        with pytest.raises(ServiceError) as after:
            core.login(CardvaultApi(http), "test", data, totp=holder.code(), ask_code=lambda _: "")
    assert problems == ["totp_wrong"] * 4 + ["second_factor_locked"]
    assert after.value.problem == "sign_in_failed"
    assert "If your card has been locked" in after.value.message
    assert card(rt, holder.card.card_id).status == "locked"


def test_a_code_sent_with_the_passcode_counts_like_any_other(
    rt: Runtime, holder: a.HolderFixture
) -> None:
    engine = Engine(rt)
    results = [a.login(engine, holder, code=wrong_code(holder.totp_secret)) for _ in range(5)]
    codes = [r.factor_error.code for r in results if r.factor_error]
    assert codes == ["totp_wrong"] * 4 + ["second_factor_locked"]
    assert card(rt, holder.card.card_id).status == "locked"


def test_a_wrong_number_typed_on_the_phone_counts_once(
    rt: Runtime, operator: Actor, holder: a.HolderFixture
) -> None:
    """A push refused for a wrong number counts when the phone answers; the sign-in's own
    refusal of that push afterwards checks nothing, so it counts nothing more."""
    from cardvault.services.devices import push

    engine = Engine(rt)
    phone = ph.pair(rt, operator, holder.card.serial)
    for _ in range(3):
        wrong_in_a_fresh_transaction(engine, holder)
    txn = a.login(engine, holder).transaction_id
    started = push.start(rt, a.client(), txn)
    wrong = f"{(started.number - 10 + 1) % 90 + 10:02d}"

    with pytest.raises(WrongNumber):
        phone.respond(rt, started.challenge_id, wrong)
    assert factor_lockout.current(rt, holder.card.card_id) == 4
    with pytest.raises(FactorFailed, match="not the one shown"):
        engine.complete_factor(
            a.client(), txn, FactorAnswer(method="authenticator", challenge_id=started.challenge_id)
        )
    assert factor_lockout.current(rt, holder.card.card_id) == 4

    assert wrong_in_a_fresh_transaction(engine, holder).code == "second_factor_locked"
    assert card(rt, holder.card.card_id).lock_reason == SECOND_FACTOR_LOCK_REASON


def test_the_fifth_wrong_number_locks_and_says_so_on_the_phone(
    rt: Runtime, operator: Actor, holder: a.HolderFixture
) -> None:
    from cardvault.services.devices import push

    engine = Engine(rt)
    phone = ph.pair(rt, operator, holder.card.serial)
    for _ in range(4):
        wrong_in_a_fresh_transaction(engine, holder)
    started = push.start(rt, a.client(), a.login(engine, holder).transaction_id)
    with pytest.raises(WrongNumber) as refused:
        phone.respond(rt, started.challenge_id, f"{(started.number - 10 + 1) % 90 + 10:02d}")
    assert "now locked" in refused.value.message
    assert card(rt, holder.card.card_id).lock_reason == SECOND_FACTOR_LOCK_REASON


def test_a_security_key_that_does_not_check_out_counts(
    rt: Runtime, operator: Actor, holder: a.HolderFixture
) -> None:
    from tests.support import keys as k
    from tests.support.soft_ctap2 import SoftCtap2Device

    engine = Engine(rt)
    device = SoftCtap2Device(pin=k.PIN)
    k.register(rt, operator, holder.card, device)
    for _ in range(4):
        wrong_in_a_fresh_transaction(engine, holder)
    first = k.login_email(engine, holder.email)
    tampered = k.offer(first)  # the client skips the PIN the organisation requires
    tampered["publicKey"] = {**tampered["publicKey"], "userVerification": "discouraged"}
    answer = k.key_answer(rt, device, tampered)

    with pytest.raises(FactorFailed) as refused:
        engine.complete_factor(
            a.client(), first.transaction_id, FactorAnswer(method="fido2", credential=answer)
        )

    assert refused.value.code == "second_factor_locked"
    assert card(rt, holder.card.card_id).status == "locked"


def test_a_key_first_answer_that_does_not_check_out_counts(rt: Runtime, operator: Actor) -> None:
    """Starting from the key itself, its assertion is the second factor (the passcode
    follows): an assertion for this card that does not check out counts."""
    from tests.support import keys as k
    from tests.support.soft_ctap2 import SoftCtap2Device

    from cardvault.clients.agent.fido2_key import get_assertion
    from cardvault.domain import webauthn
    from cardvault.services.security_keys import signin as security_key_signin

    k.org(rt, operator, **k.NO_UV)
    issued = f.active_card(rt, operator)
    device = SoftCtap2Device()
    k.register(rt, operator, issued, device, resident=True)
    for n in range(1, 6):
        start = security_key_signin.begin(rt, org_code="ORG1")
        look_alike = get_assertion(
            device, origin="https://evil.localhost:8443", request_options=start.options
        )
        with pytest.raises(webauthn.OriginMismatch):
            security_key_signin.complete(
                rt, a.client(), ceremony_id=start.ceremony_id, response=look_alike
            )
        assert factor_lockout.current(rt, issued.card_id) == n
    assert card(rt, issued.card_id).lock_reason == SECOND_FACTOR_LOCK_REASON


def test_an_hr_card_tap_that_does_not_match_counts(rt: Runtime, operator: Actor) -> None:
    from tests.support import keys as k

    from cardvault.services.signin import hr_cards
    from cardvault.services.signin.engine import LoginRequest

    k.org(rt, operator)
    h = a.holder(rt, operator)
    hr_cards.add_hr_card(rt, operator, serial=h.card.serial, org_code="ORG1", uid="04A22B1AC35E80")
    engine = Engine(rt)
    request = LoginRequest(
        identifier_kind="hr_card",
        identifier="04A22B1AC35E80",
        passcode=f.STRONG_PASSCODE,
        second_factor=FactorAnswer(method="hr_card", uid="04A22B1AC35E81"),
    )
    errors = [engine.login(a.client(), request).factor_error for _ in range(5)]
    assert [e.code for e in errors if e] == ["hr_card_mismatch"] * 4 + ["second_factor_locked"]
    assert card(rt, h.card.card_id).lock_reason == SECOND_FACTOR_LOCK_REASON


# --- QR and the mobile agent: the device is the second factor ---------------------------


def test_a_qr_answer_with_a_bad_device_signature_counts(
    rt: Runtime, operator: Actor, holder: a.HolderFixture
) -> None:
    from cardvault.crypto import device as dcrypto
    from cardvault.services.devices.requests import authenticate

    phone = ph.pair(rt, operator, holder.card.serial)
    forged = replace(phone, key=dcrypto.DeviceKey.generate())  # the id, not the key
    for n in range(1, 6):
        with pytest.raises(dcrypto.BadDeviceSignature):
            authenticate(rt, a.client(), forged.request("/api/v1/device/qr-login"), sign_in=True)
        assert factor_lockout.current(rt, holder.card.card_id) == n
    assert card(rt, holder.card.card_id).lock_reason == SECOND_FACTOR_LOCK_REASON
    # requests that open no session do not count (they only see push challenges, say)
    assert reasons(rt, holder.card.card_id, "bad device signature") == 5


@pytest.mark.parametrize("path", ["/api/v1/device/qr-login", "/api/v1/device/login"])
def test_the_routes_that_open_a_session_count_a_forged_device_signature_over_http(
    rt: Runtime, operator: Actor, holder: a.HolderFixture, path: str
) -> None:
    """The doors as the phone knocks: a request signed with another key than the device's.
    Other routes refuse it too, but open no session, so they do not count."""
    import secrets

    from fastapi.testclient import TestClient

    from cardvault.crypto import device as dcrypto
    from cardvault.web.app import create_app

    phone = ph.pair(rt, operator, holder.card.serial)
    forger = dcrypto.DeviceKey.generate()
    client = TestClient(create_app(rt), base_url="https://testserver", client=("127.0.0.1", 5))

    def forged(method: str, where: str, body: bytes = b"") -> dict[str, str]:
        ts, nonce = int(time.time()), secrets.token_urlsafe(16)
        signed = dcrypto.request_signing_input(
            method=method, path=where, timestamp=ts, nonce=nonce, body=body
        )
        return {
            "x-cardvault-device": phone.device_id,
            "x-cardvault-timestamp": str(ts),
            "x-cardvault-nonce": nonce,
            "x-cardvault-signature": dcrypto.b64url(forger.sign(signed)),
        }

    assert client.get("/api/v1/device", headers=forged("GET", "/api/v1/device")).status_code == 401
    assert factor_lockout.current(rt, holder.card.card_id) == 0
    refused = client.post(path, content=b"x", headers=forged("POST", path, b"x"))
    assert (refused.status_code, refused.json()["code"]) == (401, "device_signature_invalid")
    assert factor_lockout.current(rt, holder.card.card_id) == 1


def test_a_qr_sign_in_resets_the_count(
    rt: Runtime, operator: Actor, holder: a.HolderFixture
) -> None:
    from cardvault.crypto import device as dcrypto
    from cardvault.services.devices import qr_login
    from cardvault.services.devices.requests import authenticate

    engine = Engine(rt)
    phone = ph.pair(rt, operator, holder.card.serial)
    for _ in range(4):
        wrong_in_a_fresh_transaction(engine, holder)
    pc = dcrypto.new_box_key()
    start = qr_login.start(rt, a.client(), public_jwk=pc.public_jwk(), client_name="PC-1")
    code = start["uri"].rsplit("code=", 1)[1]
    caller = authenticate(rt, a.client(), phone.request("/api/v1/device/qr-login"), sign_in=True)
    qr_login.answer(rt, caller, code=code, passcode=f.STRONG_PASSCODE, approve=True)
    assert factor_lockout.current(rt, holder.card.card_id) == 0


def test_a_wrong_device_secret_on_the_mobile_agent_counts(
    rt: Runtime, operator: Actor, holder: a.HolderFixture
) -> None:
    import secrets

    from cardvault.crypto import device as dcrypto
    from cardvault.services.devices import mia, pairing
    from cardvault.services.devices.requests import authenticate

    inv = pairing.create_pairing(rt, operator, serial=holder.card.serial, org_code="ORG1")
    key = dcrypto.DeviceKey.generate()
    request = ph.pair_request(ph.pairing_token(inv.uri), key, f.STRONG_PASSCODE)
    secret = secrets.token_bytes(32)
    done = pairing.pair(rt, a.client(), replace(request, application="mia", device_secret=secret))
    phone = ph.Phone(key, done.device_id, done.totp_secret)
    for n in range(1, 6):
        caller = authenticate(rt, a.client(), phone.request("/api/v1/device/login"), sign_in=True)
        with pytest.raises(BiometricUnlockFailed):
            mia.login(rt, caller, device_secret=bytes(32))
        assert factor_lockout.current(rt, holder.card.card_id) == n
    assert card(rt, holder.card.card_id).lock_reason == SECOND_FACTOR_LOCK_REASON


def test_a_mobile_agent_session_resets_the_count(
    rt: Runtime, operator: Actor, holder: a.HolderFixture
) -> None:
    from cardvault.services.devices import mia, pairing
    from cardvault.services.devices.requests import authenticate

    inv = pairing.create_pairing(rt, operator, serial=holder.card.serial, org_code="ORG1")
    phone = ph.pair_with_uri(rt, inv.uri, application="mia")
    engine = Engine(rt)
    for _ in range(4):
        wrong_in_a_fresh_transaction(engine, holder)
    caller = authenticate(rt, a.client(), phone.request("/api/v1/device/login"), sign_in=True)
    mia.login(rt, caller, passcode=f.STRONG_PASSCODE)
    assert factor_lockout.current(rt, holder.card.card_id) == 0


# --- concurrency: two instances on one database ---------------------------------------------


@pytest.fixture
def second_instance(settings: Settings) -> Iterator[Runtime]:
    """Another service instance: its own runtime (engine, pools, KDF gate), same database."""
    other = open_runtime(settings, migrate=False)
    yield other
    other.close()


def _race(calls: list[Callable[[], object]]) -> Counter[str]:
    barrier = threading.Barrier(len(calls))

    def one(call: Callable[[], object]) -> str:
        barrier.wait()
        try:
            call()
        except CardvaultError as exc:
            return exc.code
        return "ok"

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return Counter(pool.map(one, calls))


@pytest.mark.slow
def test_fifty_concurrent_wrong_codes_on_two_instances_are_counted_exactly_five(
    rt: Runtime, second_instance: Runtime, holder: a.HolderFixture
) -> None:
    for runtime in (rt, second_instance):
        runtime.kdf_gate = KdfGate(slots=2, queue=100)
    engines = [Engine(rt), Engine(second_instance)]
    txns = [a.login(engines[n % 2], holder).transaction_id for n in range(50)]
    wrong = wrong_code(holder.totp_secret)

    def submit(n: int) -> Callable[[], object]:
        engine = engines[n % 2]
        return lambda: engine.complete_factor(
            a.client(), txns[n], FactorAnswer(method="totp", code=wrong)
        )

    outcomes = _race([submit(n) for n in range(50)])

    assert sum(outcomes.values()) == 50
    assert "ok" not in outcomes, outcomes
    card_id = holder.card.card_id
    assert reasons(rt, card_id, "TOTP code wrong") == 5  # checked: exactly five
    assert (
        outcomes["totp_wrong"] + outcomes["second_factor_locked"] + outcomes["transaction_invalid"]
        == 50
    )
    locked = card(rt, card_id)
    assert (locked.status, locked.second_factor_failures) == ("locked", 5)
    with rt.db() as s:
        locks = s.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.card_id == card_id, AuditEvent.action == "card.locked")
        )
    assert locks == 1
    assert len(queued(rt, "card_locked")) == len(queued(rt, "second_factor_alert")) == 1
