"""The device services on SQLite and PostgreSQL: pairing, signed requests, push rules."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from sqlalchemy import select
from tests.support import auth as a
from tests.support import factories as f
from tests.support import phones as ph

from cardvault.crypto import device as dcrypto
from cardvault.services.devices import pairing, push, push_answers, registry
from cardvault.services.devices.errors import (
    ChallengeClosed,
    DeviceNotRecognised,
    PairingUsed,
    PushRateLimited,
    RequestReplayed,
    RequestStale,
    WrongNumber,
)
from cardvault.services.devices.requests import authenticate
from cardvault.services.signin.engine import Engine, LoginRequest
from cardvault.services.signin.errors import FactorFailed, SignInFailed, WrongPasscode
from cardvault.services.signin.factors import FactorAnswer
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import AuditEvent, Card, Device
from cardvault.web.errors import status_of


@pytest.fixture
def holder(rt: Runtime, operator: Actor) -> f.IssuedFixture:
    a.open_org(rt, operator)
    return f.active_card(rt, operator, "ORG1", algorithm="ecp256", email="dev@example.org")


def test_pairing_needs_the_passcode_and_a_wrong_one_counts_towards_the_lockout(
    rt: Runtime, operator: Actor, holder: f.IssuedFixture
) -> None:
    inv = pairing.create_pairing(rt, operator, serial=holder.serial, org_code="ORG1")
    key = dcrypto.DeviceKey.generate()
    with pytest.raises(WrongPasscode):
        pairing.pair(
            rt, a.client(), ph.pair_request(ph.pairing_token(inv.uri), key, "not the passcode")
        )
    with rt.db() as s:
        card = s.get(Card, holder.card_id)
        assert card is not None
        assert card.failed_attempts == 1
    done = pairing.pair(
        rt, a.client(), ph.pair_request(ph.pairing_token(inv.uri), key, f.STRONG_PASSCODE)
    )
    assert done.card_serial == holder.serial
    with pytest.raises(PairingUsed):
        pairing.pair(
            rt, a.client(), ph.pair_request(ph.pairing_token(inv.uri), key, f.STRONG_PASSCODE)
        )


def test_pairing_refuses_a_proof_made_with_another_key(
    rt: Runtime, operator: Actor, holder: f.IssuedFixture
) -> None:
    inv = pairing.create_pairing(rt, operator, serial=holder.serial, org_code="ORG1")
    req = ph.pair_request(
        ph.pairing_token(inv.uri), dcrypto.DeviceKey.generate(), f.STRONG_PASSCODE
    )
    other = dcrypto.b64url(dcrypto.DeviceKey.generate().public_der())
    with pytest.raises(dcrypto.BadDeviceSignature):
        pairing.pair(rt, a.client(), replace(req, public_key=other))


def test_signed_requests_are_fresh_and_used_once(
    rt: Runtime, operator: Actor, holder: f.IssuedFixture
) -> None:
    phone = ph.pair(rt, operator, holder.serial)
    req = phone.request()
    assert authenticate(rt, a.client(), req).device_id == phone.device_id
    with pytest.raises(RequestReplayed):
        authenticate(rt, a.client(), req)
    with pytest.raises(RequestStale):
        authenticate(rt, a.client(), phone.request(ts=time.time() - 300))
    forged = replace(phone.request(), path="/api/v1/device/login")
    with pytest.raises(dcrypto.BadDeviceSignature):
        authenticate(rt, a.client(), forged)
    with rt.db() as s:
        reasons = set(
            s.scalars(select(AuditEvent.reason).where(AuditEvent.action == "device.request"))
        )
    assert reasons == {"replayed device request", "bad device signature"}


def _push(rt: Runtime, engine: Engine, email: str) -> tuple[str, push.PushStarted]:
    result = engine.login(
        a.client(),
        LoginRequest(identifier_kind="email", identifier=email, passcode=f.STRONG_PASSCODE),
    )
    assert [o.method for o in result.second_factors] == ["authenticator"]
    return result.transaction_id, push.start(rt, a.client(), result.transaction_id)


def test_an_approval_opens_one_session_only(
    rt: Runtime, operator: Actor, holder: f.IssuedFixture
) -> None:
    engine = Engine(rt)
    phone = ph.pair(rt, operator, holder.serial)
    txn, started = _push(rt, engine, "dev@example.org")
    number = f"{started.number:02d}"
    signed_for_other = phone.answer(started.challenge_id, "00")
    with pytest.raises(dcrypto.BadDeviceSignature):  # the signature binds the number
        push_answers.answer(rt, phone.caller(rt), replace(signed_for_other, number=number))
    assert push_answers.answer(
        rt, phone.caller(rt), phone.answer(started.challenge_id, number)
    ) == (push.PushStatus.APPROVED)
    response = FactorAnswer(method="authenticator", challenge_id=started.challenge_id)
    grant = engine.complete_factor(a.client(), txn, response)
    assert grant.card_serial == holder.serial
    assert push.status(rt, started.challenge_id, txn) is push.PushStatus.USED


def test_approving_without_the_right_number_refuses_the_challenge(
    rt: Runtime, operator: Actor, holder: f.IssuedFixture
) -> None:
    engine = Engine(rt)
    phone = ph.pair(rt, operator, holder.serial)
    txn, started = _push(rt, engine, "dev@example.org")
    wrong = f"{(started.number - 10 + 1) % 90 + 10:02d}"
    with pytest.raises(WrongNumber):
        push_answers.answer(rt, phone.caller(rt), phone.answer(started.challenge_id, wrong))
    number = f"{started.number:02d}"
    with pytest.raises(ChallengeClosed):
        push_answers.answer(rt, phone.caller(rt), phone.answer(started.challenge_id, number))
    with pytest.raises(FactorFailed, match="not the one shown"):
        engine.complete_factor(
            a.client(), txn, FactorAnswer(method="authenticator", challenge_id=started.challenge_id)
        )


def test_prompts_are_limited_per_card_and_back_off_after_a_denial(
    rt: Runtime, operator: Actor, holder: f.IssuedFixture
) -> None:
    engine = Engine(rt)
    phone = ph.pair(rt, operator, holder.serial)
    started = [_push(rt, engine, "dev@example.org")[1] for _ in range(3)]
    with pytest.raises(PushRateLimited) as limited:
        _push(rt, engine, "dev@example.org")
    assert status_of(limited.value) == 429
    push_answers.answer(rt, phone.caller(rt), phone.answer(started[0].challenge_id, "", "deny"))
    with pytest.raises(PushRateLimited) as backoff:
        _push(rt, engine, "dev@example.org")
    assert 0 < backoff.value.retry_after <= 30


def test_revoking_a_device_refuses_its_next_request(
    rt: Runtime, operator: Actor, holder: f.IssuedFixture
) -> None:
    phone = ph.pair(rt, operator, holder.serial)
    registry.revoke(rt, operator, phone.device_id, reason="lost")
    with rt.db() as s:
        device = s.get(Device, phone.device_id)
        assert device is not None
        assert device.status == "revoked"
        assert device.sealed_totp_secret is None
    with pytest.raises(DeviceNotRecognised):
        authenticate(rt, a.client(), phone.request())
    assert registry.list_devices(rt, holder.serial)[0]["status"] == "revoked"


def test_a_phone_whose_card_wrong_passcodes_locked_still_takes_challenges_only(
    rt: Runtime, operator: Actor, holder: f.IssuedFixture
) -> None:
    """The holder resets a card locked by wrong passcodes with the phone's approval
    (DESIGN §3.3); nothing else works from the phone until then, and an RA's lock holds."""
    phone = ph.pair(rt, operator, holder.serial)
    for _ in range(3):
        with pytest.raises(SignInFailed):
            Engine(rt).login(
                a.client(),
                LoginRequest(identifier_kind="email", identifier="dev@example.org", passcode="no"),
            )
    assert authenticate(rt, a.client(), phone.request(), for_challenges=True).card_id == (
        holder.card_id
    )
    assert registry.still_usable(rt, phone.device_id)  # its event stream stays open
    with pytest.raises(DeviceNotRecognised, match="is locked"):
        authenticate(rt, a.client(), phone.request())
    with transaction(rt.db) as s:
        card = s.get(Card, holder.card_id)
        assert card is not None
        card.lock_reason = "reported stolen"  # as if the RA had locked it
    with pytest.raises(DeviceNotRecognised, match="is locked"):
        authenticate(rt, a.client(), phone.request(), for_challenges=True)
    assert not registry.still_usable(rt, phone.device_id)
