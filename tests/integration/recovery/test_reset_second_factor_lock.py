"""The portal's reset step is a door to the second factor too (DESIGN §3.3 revised): its wrong
answers count toward the card's second-factor lock, on top of the reset's own limits per link
and per card, and a right one resets the count. A card that wrong second factors locked is
reset through its lock email, which asks for the second factor as any reset does."""

from __future__ import annotations

import time

import pyotp
import pytest
from sqlalchemy import select
from tests.support import auth as a
from tests.support import factories as f
from tests.support import portal as p

from cardvault.domain.lockout import ATTEMPTS_LOCK_REASON, SECOND_FACTOR_LOCK_REASON
from cardvault.errors import CardvaultError
from cardvault.services.directory import registry as directory
from cardvault.services.recovery import factor_answer, new_passcode, reset_links
from cardvault.services.recovery import reset as recovery
from cardvault.services.recovery.errors import LinkInvalid
from cardvault.services.signin import factor_lockout
from cardvault.services.signin.engine import Engine
from cardvault.services.signin.errors import FactorFailed
from cardvault.services.signin.factors import FactorAnswer
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import Card, Notification

NEW = "violet tractor umbrella 1987"
ANSWERS = {1: f.ANSWERS[0], 2: f.ANSWERS[1], 3: f.ANSWERS[2]}
RA_EMAIL = "ra.alerts@example.org"


@pytest.fixture
def holder(rt: Runtime, operator: Actor) -> a.HolderFixture:
    a.open_org(rt, operator)
    ra = f.person(rt, operator, "ORG1", forename="Rhea", email=RA_EMAIL)
    directory.grant_role(rt, operator, user_id=ra, org_code="ORG1", role="ra_manager")
    return a.holder(rt, operator, forename="Ann")


def _wrong(h: a.HolderFixture) -> str:
    near = {pyotp.TOTP(h.totp_secret).at(time.time() + s) for s in range(-150, 151, 30)}
    return next(c for c in (f"{d}" * 6 for d in range(10)) if c not in near)


def _sign_in_wrong(engine: Engine, h: a.HolderFixture, times: int) -> None:
    for _ in range(times):
        txn = a.login(engine, h).transaction_id
        with pytest.raises(FactorFailed):
            engine.complete_factor(a.client(), txn, FactorAnswer(method="totp", code=_wrong(h)))


def _card(rt: Runtime, card_id: str) -> Card:
    with rt.db() as s:
        card = s.get(Card, card_id)
        assert card is not None
        return card


def _code(rt: Runtime, token: str, step: recovery.Progress, code: str) -> recovery.Progress:
    return factor_answer.second_factor(
        rt, a.client(), token, step.transaction_id, step.key, FactorAnswer(method="code", code=code)
    )


def _alerts(rt: Runtime) -> list[str]:
    with rt.db() as s:
        return list(
            s.scalars(
                select(Notification.recipient).where(Notification.template == "second_factor_alert")
            )
        )


def test_wrong_codes_in_a_reset_count_toward_the_card_and_a_right_one_resets_it(
    rt: Runtime, holder: a.HolderFixture
) -> None:
    engine = Engine(rt)
    _sign_in_wrong(engine, holder, 2)
    p.lock(engine, holder)  # three wrong passcodes
    token = p.newest_reset_link(rt)
    step = recovery.answer(rt, a.client(), token, answers=ANSWERS)

    with pytest.raises(FactorFailed, match="2 tries left"):
        _code(rt, token, step, _wrong(holder))
    assert factor_lockout.current(rt, holder.card.card_id) == 3

    _code(rt, token, step, holder.code())
    assert factor_lockout.current(rt, holder.card.card_id) == 0


def test_a_card_that_second_factors_locked_is_reset_with_its_lock_email(
    rt: Runtime, holder: a.HolderFixture
) -> None:
    _sign_in_wrong(Engine(rt), holder, 5)
    assert _card(rt, holder.card.card_id).lock_reason == SECOND_FACTOR_LOCK_REASON
    token = p.newest_reset_link(rt, holder.email)

    step = recovery.answer(rt, a.client(), token, answers=ANSWERS)
    assert step.step == recovery.STEP_FACTOR  # the counter is full, yet the reset asks
    step = _code(rt, token, step, holder.code())
    new_passcode.set_passcode(
        rt, a.client(), token, step.transaction_id, step.key, passcode=NEW, confirm=NEW
    )

    card = _card(rt, holder.card.card_id)
    assert (card.status, card.lock_reason, card.second_factor_failures) == ("active", None, 0)
    assert a.login(Engine(rt), holder, passcode=NEW, code=holder.code(time.time() + 30)).session


def test_a_forgotten_passcode_reset_of_an_active_card_locks_it_at_the_fifth(
    rt: Runtime, holder: a.HolderFixture
) -> None:
    """Whoever has the holder's mailbox and answers cannot use a reset to grind the second
    factor: the fifth wrong one in a row locks the card, ends the link in use and sends the
    holder a new lock email."""
    _sign_in_wrong(Engine(rt), holder, 4)
    reset_links.request_reset(rt, a.client(), holder.email)
    token = p.newest_reset_link(rt)
    step = recovery.answer(rt, a.client(), token, answers=ANSWERS)

    with pytest.raises(FactorFailed, match="now locked") as refused:
        _code(rt, token, step, _wrong(holder))

    assert "this link no longer works" in refused.value.message
    card = _card(rt, holder.card.card_id)
    assert (card.status, card.lock_reason) == ("locked", SECOND_FACTOR_LOCK_REASON)
    with pytest.raises(LinkInvalid):
        _code(rt, token, step, holder.code())
    with rt.db() as s:
        mail = s.scalars(select(Notification).where(Notification.template == "card_locked")).one()
        assert mail.context["cause"] == "second_factor"
    assert _alerts(rt) == [RA_EMAIL]


def test_a_locked_card_reaching_five_in_its_reset_alerts_the_ras_and_keeps_the_reset_limits(
    rt: Runtime, holder: a.HolderFixture
) -> None:
    engine = Engine(rt)
    _sign_in_wrong(engine, holder, 4)
    p.lock(engine, holder)
    token = p.newest_reset_link(rt)
    step = recovery.answer(rt, a.client(), token, answers=ANSWERS)

    with pytest.raises(FactorFailed, match="2 tries left"):
        _code(rt, token, step, _wrong(holder))

    card = _card(rt, holder.card.card_id)
    assert (card.status, card.lock_reason, card.second_factor_failures) == (
        "locked",
        ATTEMPTS_LOCK_REASON,
        5,
    )
    assert _alerts(rt) == [RA_EMAIL]
    # the counter is full, but the reset goes on within its own limits: two more tries here
    with pytest.raises(FactorFailed, match="1 try left"):
        _code(rt, token, step, _wrong(holder))
    with pytest.raises(CardvaultError):
        _code(rt, token, step, _wrong(holder))
    with pytest.raises(LinkInvalid):
        recovery.open_reset(rt, token)
    assert _alerts(rt) == [RA_EMAIL]  # alerted once
