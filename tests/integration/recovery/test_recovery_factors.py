"""The second step of a reset with every kind of bound second factor: a push to the paired
phone (approved, denied, expired, not yet answered), the phone's own one-time code, and a
FIDO2 security key (the right key, a wrong key, a replayed answer). Each checked by the
plug-ins the sign-in uses; each wrong one costs a try on the link, as a wrong answer does."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func, select
from tests.support import auth as a
from tests.support import factories as f
from tests.support import keys as k
from tests.support import phones as ph
from tests.support import portal as p
from tests.support.soft_ctap2 import SoftCtap2Device

from cardvault.domain.push_policy import PushStatus
from cardvault.services.devices import errors as device_errors
from cardvault.services.devices import push, push_answers
from cardvault.services.devices.errors import PushRateLimited
from cardvault.services.directory import registry as directory
from cardvault.services.recovery import factor_answer, new_passcode, reset_links
from cardvault.services.recovery import factors as recovery_factors
from cardvault.services.recovery import prompts as recovery_prompts
from cardvault.services.recovery import reset as recovery
from cardvault.services.recovery.errors import LinkInvalid, RecoveryStepInvalid
from cardvault.services.signin import hr_cards
from cardvault.services.signin.engine import Engine, LoginRequest, LoginResult
from cardvault.services.signin.errors import FactorFailed, TransactionInvalid
from cardvault.services.signin.factors import FactorAnswer
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import AuditEvent, Card, CardSession, PushChallenge

NEW = "violet tractor umbrella 1987"
ANSWERS = {1: f.ANSWERS[0], 2: f.ANSWERS[1], 3: f.ANSWERS[2]}


def _lock(rt: Runtime, email: str) -> str:
    """Three wrong passcodes; the reset link from the lock email."""
    p.lock_by_email(Engine(rt), email)
    return p.newest_reset_link(rt)


def _at_factor(rt: Runtime, token: str) -> recovery.Progress:
    step = recovery.answer(rt, a.client(), token, answers=ANSWERS)
    assert step.step == recovery.STEP_FACTOR
    return step


def _factor(rt: Runtime, token: str, step: recovery.Progress, **response: Any) -> Any:
    return factor_answer.second_factor(
        rt, a.client(), token, step.transaction_id, step.key, FactorAnswer(**response)
    )


def _finish(rt: Runtime, token: str, step: recovery.Progress) -> None:
    new_passcode.set_passcode(
        rt, a.client(), token, step.transaction_id, step.key, passcode=NEW, confirm=NEW
    )


def _snapshot(rt: Runtime, card_id: str) -> tuple[Any, ...]:
    with rt.db() as s:
        card = s.get(Card, card_id)
        assert card is not None
        return (card.status, card.record_version, card.key_record, card.failed_attempts)


def _tries_left(rt: Runtime, token: str) -> int:
    return recovery.open_reset(rt, token).tries_left


def _events(rt: Runtime, card_id: str, action: str) -> list[AuditEvent]:
    with rt.db() as s:
        return list(
            s.scalars(
                select(AuditEvent)
                .where(AuditEvent.card_id == card_id, AuditEvent.action == action)
                .order_by(AuditEvent.seq)
            )
        )


def _sign_in(rt: Runtime, email: str, passcode: str) -> LoginResult:
    """The sign-in's first step (a wrong passcode raises SignInFailed)."""
    return Engine(rt).login(
        a.client(), LoginRequest(identifier_kind="email", identifier=email, passcode=passcode)
    )


# --- push to the paired phone ----------------------------------------------------------------


@pytest.fixture
def phone_only(rt: Runtime, operator: Actor) -> tuple[f.IssuedFixture, ph.Phone, str]:
    """A card whose only second factor is a paired phone, locked, and its reset link."""
    a.open_org(rt, operator)
    card = f.active_card(rt, operator, email="phone.holder@example.org")
    phone = ph.pair(rt, operator, card.serial)
    return card, phone, _lock(rt, "phone.holder@example.org")


def test_a_push_approved_on_the_phone_confirms_the_reset(
    rt: Runtime, phone_only: tuple[f.IssuedFixture, ph.Phone, str]
) -> None:
    card, phone, token = phone_only
    step = _at_factor(rt, token)
    assert list(step.second_factors) == ["authenticator"]

    started = recovery_prompts.start_push(rt, a.client(), token, step.transaction_id, step.key)
    shown = recovery_prompts.push_prompt(
        rt, token, step.transaction_id, step.key, started.challenge_id
    )
    assert (shown.number, shown.status) == (started.number, PushStatus.PENDING)
    (on_phone,) = push_answers.pending_for_device(rt, phone.caller(rt))
    assert on_phone["client_name"] == recovery_factors.CLIENT_NAME
    assert "number" not in on_phone  # only the computer shows it
    number = f"{started.number:02d}"
    assert phone.respond(rt, started.challenge_id, number) is PushStatus.APPROVED
    assert (
        recovery_prompts.push_status(rt, token, step.transaction_id, step.key, started.challenge_id)
        is PushStatus.APPROVED
    )

    done = _factor(rt, token, step, method="authenticator", challenge_id=started.challenge_id)

    assert done.step == recovery.STEP_PASSCODE
    confirmed = _events(rt, card.card_id, "recovery.second_factor")[-1]
    assert (confirmed.outcome, confirmed.details["method"]) == ("success", "push")
    assert confirmed.details["device"] == phone.device_id
    _finish(rt, token, done)
    assert _sign_in(rt, "phone.holder@example.org", NEW).second_factors
    with rt.db() as s:
        ch = s.get(PushChallenge, started.challenge_id)
        assert ch is not None
        assert ch.status == PushStatus.USED.value  # an approval opens one reset only


def test_a_denied_push_changes_nothing_and_costs_a_try(
    rt: Runtime, phone_only: tuple[f.IssuedFixture, ph.Phone, str]
) -> None:
    card, phone, token = phone_only
    step = _at_factor(rt, token)
    before = _snapshot(rt, card.card_id)
    started = recovery_prompts.start_push(rt, a.client(), token, step.transaction_id, step.key)
    phone.respond(rt, started.challenge_id, f"{started.number:02d}", decision="deny")

    with pytest.raises(FactorFailed, match=r"denied on the phone\. 2 tries left") as refused:
        _factor(rt, token, step, method="authenticator", challenge_id=started.challenge_id)

    assert refused.value.code == "push_denied"
    assert _tries_left(rt, token) == recovery.LINK_MAX_FAILURES - 1
    assert _snapshot(rt, card.card_id) == before
    assert _events(rt, card.card_id, "recovery.second_factor")[-1].reason == "push denied"
    with pytest.raises(PushRateLimited):  # a denial backs off the next prompt …
        recovery_prompts.start_push(rt, a.client(), token, step.transaction_id, step.key)
    done = _factor(rt, token, step, method="code", code=phone.code())  # … the code still works
    assert done.step == recovery.STEP_PASSCODE


def test_an_expired_push_changes_nothing_and_costs_a_try(
    rt: Runtime, phone_only: tuple[f.IssuedFixture, ph.Phone, str]
) -> None:
    card, _phone, token = phone_only
    step = _at_factor(rt, token)
    before = _snapshot(rt, card.card_id)
    started = recovery_prompts.start_push(rt, a.client(), token, step.transaction_id, step.key)
    clock = p.Clock(rt.clock())
    rt.clock = clock
    clock.advance(seconds=rt.settings.push_challenge_seconds + 1)

    with pytest.raises(FactorFailed, match="expired") as refused:
        _factor(rt, token, step, method="authenticator", challenge_id=started.challenge_id)

    assert refused.value.code == "push_expired"
    assert _tries_left(rt, token) == recovery.LINK_MAX_FAILURES - 1
    assert _snapshot(rt, card.card_id) == before


def test_continuing_before_the_phone_answers_costs_nothing(
    rt: Runtime, phone_only: tuple[f.IssuedFixture, ph.Phone, str]
) -> None:
    _card, phone, token = phone_only
    step = _at_factor(rt, token)
    started = recovery_prompts.start_push(rt, a.client(), token, step.transaction_id, step.key)

    with pytest.raises(device_errors.PushNotAnswered):
        _factor(rt, token, step, method="authenticator", challenge_id=started.challenge_id)

    assert _tries_left(rt, token) == recovery.LINK_MAX_FAILURES
    phone.respond(rt, started.challenge_id, f"{started.number:02d}")
    done = _factor(rt, token, step, method="authenticator", challenge_id=started.challenge_id)
    assert done.step == recovery.STEP_PASSCODE


def test_only_the_browser_that_answered_can_ring_the_phone(
    rt: Runtime, phone_only: tuple[f.IssuedFixture, ph.Phone, str]
) -> None:
    _card, _phone, token = phone_only
    step = _at_factor(rt, token)
    with pytest.raises(RecoveryStepInvalid):
        recovery_prompts.start_push(rt, a.client(), token, step.transaction_id, bytes(32))
    started = recovery_prompts.start_push(rt, a.client(), token, step.transaction_id, step.key)
    with pytest.raises(RecoveryStepInvalid):
        recovery_prompts.push_prompt(
            rt, token, step.transaction_id, bytes(32), started.challenge_id
        )
    with rt.db() as s:
        assert s.scalar(select(func.count()).select_from(PushChallenge)) == 1


def test_a_reset_transaction_is_no_sign_in(rt: Runtime, operator: Actor) -> None:
    """Neither the engine nor the PC's push API takes a reset's transaction: it would open a
    card session without the new passcode, the confirmation email or the link's end."""
    a.open_org(rt, operator)
    card = f.active_card(rt, operator, email="active.holder@example.org")
    phone = ph.pair(rt, operator, card.serial)
    reset_links.request_reset(rt, a.client(), "active.holder@example.org")
    token = p.newest_reset_link(rt)
    step = _at_factor(rt, token)
    with pytest.raises(device_errors.TransactionInvalid):
        push.start(rt, a.client(), step.transaction_id)
    with pytest.raises(TransactionInvalid):
        Engine(rt).complete_factor(
            a.client(), step.transaction_id, FactorAnswer(method="authenticator", code=phone.code())
        )
    with rt.db() as s:
        assert s.scalar(select(func.count()).select_from(CardSession)) == 0
    done = _factor(rt, token, step, method="code", code=phone.code())
    assert done.step == recovery.STEP_PASSCODE


# --- one-time codes: the paired phone's own, or an authenticator app's ----------------------


def test_a_reset_offers_only_the_second_factors_the_organisation_allows(
    rt: Runtime, operator: Actor
) -> None:
    """``second_factors`` holds for a reset as for a sign-in (the settings page edits it)."""
    a.open_org(rt, operator)
    directory.update_policy(rt, operator, "ORG1", {"second_factors": ["totp"]})
    h = a.holder(rt, operator)
    ph.pair(rt, operator, h.card.serial)
    token = _lock(rt, h.email)
    step = _at_factor(rt, token)
    assert list(step.second_factors) == ["totp"]
    done = _factor(rt, token, step, method="code", code=h.code())
    assert done.step == recovery.STEP_PASSCODE


@pytest.mark.parametrize("source", ["phone", "app"])
def test_a_code_from_either_app_confirms_the_reset_and_a_wrong_one_costs_one_try(
    rt: Runtime, operator: Actor, source: str
) -> None:
    a.open_org(rt, operator)
    h = a.holder(rt, operator)
    phone = ph.pair(rt, operator, h.card.serial)
    token = _lock(rt, h.email)
    step = _at_factor(rt, token)
    assert sorted(step.second_factors) == ["authenticator", "totp"]
    right = phone.code() if source == "phone" else h.code()
    wrong = next(c for c in ("000000", "111111", "222222") if c not in (phone.code(), h.code()))

    with pytest.raises(FactorFailed, match=r"not right\. .* 2 tries left"):
        _factor(rt, token, step, method="code", code=wrong)
    assert _tries_left(rt, token) == recovery.LINK_MAX_FAILURES - 1  # two apps, one try

    done = _factor(rt, token, step, method="code", code=right)
    assert done.step == recovery.STEP_PASSCODE
    used = _events(rt, h.card.card_id, "recovery.second_factor")[-1].details["method"]
    assert used == ("device_totp" if source == "phone" else "totp")


def test_racing_submissions_of_the_right_code_cost_no_try(rt: Runtime, operator: Actor) -> None:
    """The losers of a race find the step moved on: their reserved tries go back (a link
    takes at most three tries in flight, so some are turned away before they reserve one)."""
    a.open_org(rt, operator)
    h = a.holder(rt, operator)
    token = _lock(rt, h.email)
    step = _at_factor(rt, token)
    code = h.code()
    barrier = threading.Barrier(8)

    def submit(_: int) -> str:
        barrier.wait()
        try:
            return _factor(rt, token, step, method="code", code=code).step
        except (RecoveryStepInvalid, LinkInvalid) as exc:
            return type(exc).__name__  # moved on, or three tries already in flight

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(submit, range(8)))
    assert outcomes.count(recovery.STEP_PASSCODE) == 1
    assert _tries_left(rt, token) == recovery.LINK_MAX_FAILURES
    with rt.db() as s:
        card = s.get(Card, h.card.card_id)
        assert card is not None
        assert card.recovery_failures == 0


def test_a_replayed_code_is_named_as_such(rt: Runtime, operator: Actor) -> None:
    a.open_org(rt, operator)
    h = a.holder(rt, operator)
    ph.pair(rt, operator, h.card.serial)
    code = h.code()
    assert Engine(rt).login(a.client(), _with_code(h.email, code)).session is not None
    token = _lock(rt, h.email)
    step = _at_factor(rt, token)
    with pytest.raises(FactorFailed, match="already been used") as refused:
        _factor(rt, token, step, method="code", code=code)
    assert refused.value.code == "totp_replayed"


def _with_code(email: str, code: str) -> LoginRequest:
    return LoginRequest(
        identifier_kind="email",
        identifier=email,
        passcode=f.STRONG_PASSCODE,
        second_factor=FactorAnswer(method="totp", code=code),
    )


# --- a FIDO2 security key ---------------------------------------------------------------------


@pytest.fixture
def key_holder(rt: Runtime, operator: Actor) -> tuple[f.IssuedFixture, SoftCtap2Device, str]:
    """A card whose only second factor is a security key with a PIN (the organisation
    requires user verification, the default), locked, and its reset link."""
    k.org(rt, operator)
    card = f.active_card(rt, operator, email="key.holder@example.org")
    device = SoftCtap2Device(pin=k.PIN)
    k.register(rt, operator, card, device, nickname="Ward key")
    return card, device, _lock(rt, "key.holder@example.org")


def _options(rt: Runtime, token: str, step: recovery.Progress) -> dict[str, Any]:
    return recovery_prompts.security_key_options(
        rt, a.client(), token, step.transaction_id, step.key
    )


def test_the_right_security_key_confirms_the_reset(
    rt: Runtime, key_holder: tuple[f.IssuedFixture, SoftCtap2Device, str]
) -> None:
    card, device, token = key_holder
    step = _at_factor(rt, token)
    assert list(step.second_factors) == ["fido2"]
    options = _options(rt, token, step)
    assert options["publicKey"]["userVerification"] == "required"
    assert options == _options(rt, token, step)  # the same challenge until it is answered

    done = _factor(rt, token, step, method="fido2", credential=k.key_answer(rt, device, options))

    assert done.step == recovery.STEP_PASSCODE
    confirmed = _events(rt, card.card_id, "recovery.second_factor")[-1]
    assert confirmed.details["nickname"] == "Ward key"
    assert confirmed.details["user_verified"] is True
    _finish(rt, token, done)
    assert _sign_in(rt, "key.holder@example.org", NEW).second_factors


def test_a_key_not_registered_for_the_card_changes_nothing_and_costs_a_try(
    rt: Runtime, operator: Actor, key_holder: tuple[f.IssuedFixture, SoftCtap2Device, str]
) -> None:
    card, _device, token = key_holder
    other = SoftCtap2Device(pin=k.PIN)
    k.register(rt, operator, f.active_card(rt, operator), other, resident=True)
    step = _at_factor(rt, token)
    before = _snapshot(rt, card.card_id)
    options = _options(rt, token, step)
    anyone = {**options, "publicKey": {**options["publicKey"], "allowCredentials": []}}

    with pytest.raises(FactorFailed, match=r"not registered .*\. 2 tries left") as refused:
        _factor(rt, token, step, method="fido2", credential=k.key_answer(rt, other, anyone))

    assert refused.value.code == "webauthn_unknown_credential"
    assert _tries_left(rt, token) == recovery.LINK_MAX_FAILURES - 1
    assert _snapshot(rt, card.card_id) == before


def test_a_security_key_answer_counts_once_and_a_new_challenge_follows(
    rt: Runtime, key_holder: tuple[f.IssuedFixture, SoftCtap2Device, str]
) -> None:
    card, device, token = key_holder
    step = _at_factor(rt, token)
    first = _options(rt, token, step)
    answer = k.key_answer(rt, device, first)
    garbled = {**answer, "response": {**answer["response"], "signature": "AAAA"}}
    with pytest.raises(FactorFailed, match="did not verify"):
        _factor(rt, token, step, method="fido2", credential=garbled)

    with pytest.raises(FactorFailed, match="already answered") as replayed:
        _factor(rt, token, step, method="fido2", credential=answer)  # its challenge is spent

    assert replayed.value.code == "webauthn_state_replayed"
    assert _tries_left(rt, token) == recovery.LINK_MAX_FAILURES - 2
    fresh = _options(rt, token, step)
    assert fresh["publicKey"]["challenge"] != first["publicKey"]["challenge"]
    done = _factor(rt, token, step, method="fido2", credential=k.key_answer(rt, device, fresh))
    _finish(rt, token, done)

    reset_links.request_reset(rt, a.client(), "key.holder@example.org")  # another reset
    token = p.newest_reset_link(rt)
    step = _at_factor(rt, token)
    with pytest.raises(FactorFailed) as old:
        _factor(rt, token, step, method="fido2", credential=answer)
    assert old.value.code == "webauthn_challenge_mismatch"
    assert _events(rt, card.card_id, "card.passcode_reset")[-1].outcome == "success"


def test_security_key_options_need_this_browsers_key(
    rt: Runtime, key_holder: tuple[f.IssuedFixture, SoftCtap2Device, str]
) -> None:
    _card, _device, token = key_holder
    step = _at_factor(rt, token)
    with pytest.raises(RecoveryStepInvalid):
        recovery_prompts.security_key_options(rt, a.client(), token, step.transaction_id, b"x")


# --- no factor the portal can ask for -------------------------------------------------------


def test_a_holder_with_only_an_hr_card_resets_with_the_answers(
    rt: Runtime, operator: Actor
) -> None:
    """A UID is no secret and the tap proves nothing without the reader at the PC: the HR
    card is no second factor for a reset, so the answers are all the portal asks."""
    a.open_org(rt, operator)
    card = f.active_card(rt, operator, email="hr.holder@example.org")
    hr_cards.add_hr_card(rt, operator, serial=card.serial, org_code="ORG1", uid="04A22B1AC35E80")
    token = _lock(rt, "hr.holder@example.org")

    step = recovery.answer(rt, a.client(), token, answers=ANSWERS)

    assert (step.step, step.second_factors) == (recovery.STEP_PASSCODE, ())
    _finish(rt, token, step)
    signed = _sign_in(rt, "hr.holder@example.org", NEW)  # the passcode opens the card …
    assert signed.factor_error is not None
    assert signed.factor_error.code == "no_second_factor"  # … an HR card needs its tap


@pytest.fixture(autouse=True)
def _quick(rt: Runtime) -> None:
    rt.settings.reset_request_min_seconds = 0
    rt.settings.push_challenge_seconds = 60
