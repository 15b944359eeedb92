"""Every refused sign-in that names a card leaves an audit event, with the address it came
from, on the chain of the card's organisation (what its RA reads), and never the passcode
or the code that was tried. Before the right passcode nobody has proved who they are: the
event's actor is the anonymous request, whatever refused it; after it, the holder."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, update
from tests.support import auth as a
from tests.support import factories as f

from cardvault.services.networks.errors import NetworkNotAllowed
from cardvault.services.signin.engine import Engine
from cardvault.services.signin.errors import (
    FactorFailed,
    SecondFactorLocked,
    SignInFailed,
    TransactionInvalid,
)
from cardvault.services.signin.factors import FactorAnswer
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import AuditEvent, Card, Organisation

ELSEWHERE = "203.0.113.9"
WRONG = "not the passcode at all 42"


@pytest.fixture
def engine(rt: Runtime) -> Engine:
    return Engine(rt)


def _refusal(rt: Runtime, card_id: str) -> AuditEvent:
    """The card's newest failure event."""
    with rt.db() as s:
        event = s.scalars(
            select(AuditEvent)
            .where(AuditEvent.card_id == card_id, AuditEvent.outcome == "failure")
            .order_by(AuditEvent.seq.desc())
        ).first()
        assert event is not None
        return event


def _assert_audited(
    rt: Runtime, card_id: str, actor: str | None, reason: str, address: str, *secrets: str
) -> None:
    event = _refusal(rt, card_id)
    assert event.reason == reason
    if actor is not None:
        assert event.actor == actor
    assert event.details["client_address"] == address
    with rt.db() as s:
        org = s.scalar(select(Organisation).where(Organisation.code == "ORG1"))
        assert org is not None
        assert event.organisation_id == org.id  # ORG1's RA reads ORG1's chain only
    written = json.dumps(event.details)
    assert not [x for x in secrets if x in written]


def _person(rt: Runtime, card_id: str) -> str:
    with rt.db() as s:
        card = s.get(Card, card_id)
        assert card is not None
        return card.person_id


def _set_card(rt: Runtime, card_id: str, **values: object) -> None:
    with rt.db() as s, s.begin():
        s.execute(update(Card).where(Card.id == card_id).values(**values))


@pytest.mark.parametrize(
    ("passcode", "card", "address", "reason"),
    [
        (WRONG, {}, a.LOCAL, "incorrect passcode"),
        (f.STRONG_PASSCODE, {"status": "locked"}, a.LOCAL, "card is locked"),
        (f.STRONG_PASSCODE, {}, ELSEWHERE, "client network not allowed"),
    ],
    ids=["wrong passcode", "card locked", "network refused"],
)
def test_a_refusal_at_the_passcode_is_audited_with_its_address(
    rt: Runtime,
    operator: Actor,
    engine: Engine,
    passcode: str,
    card: dict[str, object],
    address: str,
    reason: str,
) -> None:
    a.open_org(rt, operator)
    h = a.holder(rt, operator)
    if card:
        _set_card(rt, h.card.card_id, **card)
    with pytest.raises(SignInFailed):
        a.login(engine, h, passcode=passcode, address=address)
    _assert_audited(rt, h.card.card_id, "anonymous", reason, address, passcode)


@pytest.mark.parametrize(
    ("wrong_code", "card", "address", "refused", "reason"),
    [
        (True, {}, a.LOCAL, FactorFailed, "TOTP code wrong"),
        (False, {"status": "locked"}, a.LOCAL, TransactionInvalid, "card is locked"),
        (
            False,
            {"second_factor_failures": 5},
            a.LOCAL,
            SecondFactorLocked,
            "no second-factor attempt left (others in progress)",
        ),
        (False, {}, ELSEWHERE, NetworkNotAllowed, "client network not allowed"),
    ],
    ids=["wrong code", "card locked since", "no attempt left", "network refused"],
)
def test_a_refusal_at_the_second_factor_is_audited_with_its_address(
    rt: Runtime,
    operator: Actor,
    engine: Engine,
    wrong_code: bool,
    card: dict[str, object],
    address: str,
    refused: type[Exception],
    reason: str,
) -> None:
    a.open_org(rt, operator)
    h = a.holder(rt, operator)
    txn = a.login(engine, h).transaction_id
    if card:
        _set_card(rt, h.card.card_id, **card)
    right = h.code()
    code = ("000000" if right != "000000" else "111111") if wrong_code else right
    with pytest.raises(refused):
        engine.complete_factor(a.client(address), txn, FactorAnswer(method="totp", code=code))
    # the lockout's own refusal records the request's actor (factor_lockout, not checked here)
    holder = None if refused is SecondFactorLocked else f"holder:{_person(rt, h.card.card_id)}"
    _assert_audited(rt, h.card.card_id, holder, reason, address, code, f.STRONG_PASSCODE)


def test_a_step_refused_unchecked_gives_its_place_on_the_counter_back(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    a.open_org(rt, operator)
    h = a.holder(rt, operator)
    txn = a.login(engine, h).transaction_id
    with pytest.raises(NetworkNotAllowed):
        engine.complete_factor(a.client(ELSEWHERE), txn, FactorAnswer(method="totp", code="1"))
    with rt.db() as s:
        card = s.get(Card, h.card.card_id)
        assert card is not None
        assert card.second_factor_failures == 0
