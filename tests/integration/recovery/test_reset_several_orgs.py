"""A passcode reset by a holder of two organisations (issue 21), on SQLite and PostgreSQL:
security keys of both in one request, either of them accepted in its own organisation;
a push that goes to the phones of the organisation whose policy the reset follows and says
it is for a reset."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from tests.support import auth as a
from tests.support import factories as f
from tests.support import keys as k
from tests.support import phones as ph
from tests.support import portal as p
from tests.support.soft_ctap2 import SoftCtap2Device

from cardvault.domain.push_policy import PushStatus
from cardvault.domain.vocabulary import SignInRoute
from cardvault.errors import NotFound
from cardvault.services.devices import push, push_answers
from cardvault.services.directory import registry as directory
from cardvault.services.recovery import factor_answer, new_passcode
from cardvault.services.recovery import factors as recovery_factors
from cardvault.services.recovery import prompts as recovery_prompts
from cardvault.services.recovery import reset as recovery
from cardvault.services.signin.engine import Engine, LoginRequest
from cardvault.services.signin.errors import FactorFailed
from cardvault.services.signin.factors import FactorAnswer, SecurityKeyOffer
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import AuditEvent, AuthTransaction, Card

NEW = "violet tractor umbrella 1987"
ANSWERS = {1: f.ANSWERS[0], 2: f.ANSWERS[1], 3: f.ANSWERS[2]}
EMAIL = "two.orgs@example.org"


def _at_factor(rt: Runtime) -> tuple[str, recovery.Progress]:
    p.lock_by_email(Engine(rt), EMAIL)
    token = p.newest_reset_link(rt)
    step = recovery.answer(rt, a.client(), token, answers=ANSWERS)
    assert step.step == recovery.STEP_FACTOR
    return token, step


def _options(rt: Runtime, token: str, step: recovery.Progress) -> dict[str, Any]:
    return recovery_prompts.security_key_options(
        rt, a.client(), token, step.transaction_id, step.key
    )


def _factor(rt: Runtime, token: str, step: recovery.Progress, **response: Any) -> Any:
    return factor_answer.second_factor(
        rt, a.client(), token, step.transaction_id, step.key, FactorAnswer(**response)
    )


def _key_labels(rt: Runtime, card_id: str, transaction_id: str) -> tuple[str, ...]:
    """The labels the reset's one security-key offer names, the card's organisation first."""
    with transaction(rt.db) as session:  # an offer may save its pending request
        card = session.get(Card, card_id)
        txn = session.get(AuthTransaction, transaction_id)
        assert card is not None
        assert txn is not None
        found = recovery_factors.offers(session, rt, a.client(), card, txn)
    (offer,) = [o for o, _orgs in found if isinstance(o, SecurityKeyOffer)]
    return offer.keys


def _allowed_ids(options: dict[str, Any]) -> set[str]:
    return {c["id"] for c in options["publicKey"]["allowCredentials"]}


def _credential_id(rt: Runtime, view: Any) -> str:
    return str(k.association(rt, view.id).details["credential_id"])


def _events(rt: Runtime, card_id: str, action: str) -> list[AuditEvent]:
    with rt.db() as s:
        return list(
            s.scalars(
                select(AuditEvent)
                .where(AuditEvent.card_id == card_id, AuditEvent.action == action)
                .order_by(AuditEvent.occurred_at, AuditEvent.seq)
            )
        )


@pytest.fixture
def two_keys(
    rt: Runtime, operator: Actor
) -> tuple[f.IssuedFixture, SoftCtap2Device, SoftCtap2Device, list[str]]:
    """A holder of ORG1 (the card's) and ORG2, a security key registered in each."""
    k.org(rt, operator, "ORG1", **k.NO_UV)
    k.org(rt, operator, "ORG2")  # requires user verification
    card = f.active_card(rt, operator, email=EMAIL)
    directory.add_membership(rt, operator, card.user_id, "ORG2")
    first, second = SoftCtap2Device(pin=k.PIN), SoftCtap2Device(pin=k.PIN)
    ids = [
        _credential_id(rt, k.register(rt, operator, card, first, org_code="ORG1", nickname="One")),
        _credential_id(rt, k.register(rt, operator, card, second, org_code="ORG2", nickname="Two")),
    ]
    return card, first, second, ids


def test_one_request_lists_the_keys_of_both_organisations(
    rt: Runtime, two_keys: tuple[f.IssuedFixture, SoftCtap2Device, SoftCtap2Device, list[str]]
) -> None:
    card, _first, _second, ids = two_keys
    token, step = _at_factor(rt)
    assert step.second_factors.count("fido2") == 1  # one offer for both organisations
    assert _key_labels(rt, card.card_id, step.transaction_id) == ("One", "Two")
    options = _options(rt, token, step)
    assert _allowed_ids(options) == set(ids)
    # the strictest user verification of the two organisations
    assert options["publicKey"]["userVerification"] == "required"
    assert options == _options(rt, token, step)  # one challenge until it is answered


@pytest.mark.parametrize("which", ["ORG1", "ORG2"])
def test_a_key_of_either_organisation_confirms_the_reset(
    rt: Runtime,
    two_keys: tuple[f.IssuedFixture, SoftCtap2Device, SoftCtap2Device, list[str]],
    which: str,
) -> None:
    card, first, second, _ids = two_keys
    token, step = _at_factor(rt)
    device = first if which == "ORG1" else second

    done = _factor(
        rt,
        token,
        step,
        method="fido2",
        credential=k.key_answer(rt, device, _options(rt, token, step)),
    )

    assert done.step == recovery.STEP_PASSCODE
    confirmed = _events(rt, card.card_id, "recovery.second_factor")[-1]
    assert confirmed.outcome == "success"
    assert confirmed.details["key_organisation"] == which
    assert confirmed.details["nickname"] == ("One" if which == "ORG1" else "Two")
    new_passcode.set_passcode(
        rt, a.client(), token, done.transaction_id, done.key, passcode=NEW, confirm=NEW
    )


def test_the_request_is_answered_once_whichever_key_answers(
    rt: Runtime, two_keys: tuple[f.IssuedFixture, SoftCtap2Device, SoftCtap2Device, list[str]]
) -> None:
    _card, first, second, _ids = two_keys
    token, step = _at_factor(rt)
    options = _options(rt, token, step)
    answer = k.key_answer(rt, second, options)
    garbled = {**answer, "response": {**answer["response"], "signature": "AAAA"}}
    with pytest.raises(FactorFailed, match="did not verify"):
        _factor(rt, token, step, method="fido2", credential=garbled)

    with pytest.raises(FactorFailed) as replayed:  # the other organisation's key, same challenge
        _factor(rt, token, step, method="fido2", credential=k.key_answer(rt, first, options))

    assert replayed.value.code == "webauthn_state_replayed"
    fresh = _options(rt, token, step)
    assert fresh["publicKey"]["challenge"] != options["publicKey"]["challenge"]
    done = _factor(rt, token, step, method="fido2", credential=k.key_answer(rt, first, fresh))
    assert done.step == recovery.STEP_PASSCODE


def test_an_organisation_that_does_not_allow_keys_keeps_its_keys_out(
    rt: Runtime,
    operator: Actor,
    two_keys: tuple[f.IssuedFixture, SoftCtap2Device, SoftCtap2Device, list[str]],
) -> None:
    _card, _first, second, ids = two_keys
    no_keys = [m for m in SignInRoute if m is not SignInRoute.SECURITY_KEY]
    k.set_policy(rt, operator, "ORG2", allowed_methods=[str(m) for m in no_keys])
    token, step = _at_factor(rt)
    options = _options(rt, token, step)

    assert _allowed_ids(options) == {ids[0]}
    assert options["publicKey"]["userVerification"] != "required"  # ORG1's own rule
    widened = {
        **options,
        "publicKey": {
            **options["publicKey"],
            "allowCredentials": [{"type": "public-key", "id": ids[1]}],
        },
    }
    with pytest.raises(FactorFailed) as refused:
        _factor(rt, token, step, method="fido2", credential=k.key_answer(rt, second, widened))
    assert refused.value.code == "webauthn_unknown_credential"


# --- a push during the reset --------------------------------------------------------------


@pytest.fixture
def two_phones(rt: Runtime, operator: Actor) -> tuple[f.IssuedFixture, ph.Phone, ph.Phone]:
    """A holder of ORG1 (the card's) and ORG2, a phone paired in each."""
    a.open_org(rt, operator, "ORG1")
    a.open_org(rt, operator, "ORG2")
    card = f.active_card(rt, operator, email=EMAIL)
    directory.add_membership(rt, operator, card.user_id, "ORG2")
    return (
        card,
        ph.pair(rt, operator, card.serial, "ORG1"),
        ph.pair(rt, operator, card.serial, "ORG2"),
    )


def _push(rt: Runtime, token: str, step: recovery.Progress) -> Any:
    return recovery_prompts.start_push(rt, a.client(), token, step.transaction_id, step.key)


def test_a_push_goes_to_the_phones_of_both_organisations_when_their_rules_agree(
    rt: Runtime, two_phones: tuple[f.IssuedFixture, ph.Phone, ph.Phone]
) -> None:
    card, first, second = two_phones
    token, step = _at_factor(rt)
    listening = ph.Listening(rt, [first.device_id, second.device_id])
    try:
        started = _push(rt, token, step)
        assert started.devices == 2
        for phone in (first, second):
            (shown,) = push_answers.pending_for_device(rt, phone.caller(rt))
            assert (shown["request"], shown["title"]) == ("passcode_reset", "Reset your passcode")

        # the phone of the second organisation answers; the first is told it was answered
        number = f"{started.number:02d}"
        assert second.respond(rt, started.challenge_id, number) is PushStatus.APPROVED
        closed = [e for e in listening.events(first.device_id) if e["type"] == "closed"]
    finally:
        listening.close()

    assert closed == [
        {
            "type": "closed",
            "challenge_id": started.challenge_id,
            "status": "approved",
            "answered_elsewhere": True,
        }
    ]
    done = _factor(rt, token, step, method="authenticator", challenge_id=started.challenge_id)
    assert done.step == recovery.STEP_PASSCODE
    confirmed = _events(rt, card.card_id, "recovery.second_factor")[-1]
    assert (confirmed.details["method"], confirmed.details["device"]) == ("push", second.device_id)


def test_a_push_goes_only_to_the_card_organisations_phones_when_rules_differ(
    rt: Runtime, operator: Actor, two_phones: tuple[f.IssuedFixture, ph.Phone, ph.Phone]
) -> None:
    _card, first, second = two_phones
    k.set_policy(rt, operator, "ORG2", recovery_requires_second_factor=False)
    token, step = _at_factor(rt)

    started = _push(rt, token, step)

    assert started.devices == 1
    assert [c["id"] for c in push_answers.pending_for_device(rt, first.caller(rt))] == [
        started.challenge_id
    ]
    assert push_answers.pending_for_device(rt, second.caller(rt)) == []
    with pytest.raises(NotFound):  # not a request for this phone
        second.respond(rt, started.challenge_id, f"{started.number:02d}")


def test_a_sign_in_push_says_sign_in(
    rt: Runtime, two_phones: tuple[f.IssuedFixture, ph.Phone, ph.Phone]
) -> None:
    _card, first, _second = two_phones
    login = Engine(rt).login(
        a.client(),
        LoginRequest(
            identifier_kind="email",
            identifier=EMAIL,
            passcode=f.STRONG_PASSCODE,
            organisation="ORG1",  # named: no choice to make first
        ),
    )
    push.start(rt, a.client(), login.transaction_id)

    (shown,) = push_answers.pending_for_device(rt, first.caller(rt))
    assert (shown["request"], shown["title"]) == ("sign_in", "Sign in")
