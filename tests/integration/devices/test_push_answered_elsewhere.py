"""A push still waiting when the sign-in (or reset) finishes another way is closed, audited,
and the phone is told it was answered on another device (issue 21), on SQLite and
PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from tests.support import auth as a
from tests.support import factories as f
from tests.support import phones as ph
from tests.support import portal as p

from cardvault.domain.push_policy import PushStatus
from cardvault.services.devices import push, push_answers
from cardvault.services.devices.errors import ChallengeClosed
from cardvault.services.recovery import factor_answer
from cardvault.services.recovery import prompts as recovery_prompts
from cardvault.services.recovery import reset as recovery
from cardvault.services.signin.engine import Engine
from cardvault.services.signin.factors import FactorAnswer
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import AuditEvent, PushChallenge

ANSWERS = {1: f.ANSWERS[0], 2: f.ANSWERS[1], 3: f.ANSWERS[2]}
NEW = "violet tractor umbrella 1987"


@pytest.fixture
def holder_with_phone(rt: Runtime, operator: Actor) -> tuple[a.HolderFixture, ph.Phone]:
    """A card with an authenticator app (TOTP) and a paired phone."""
    a.open_org(rt, operator)
    h = a.holder(rt, operator)
    return h, ph.pair(rt, operator, h.card.serial)


def _closed_events(rt: Runtime, challenge_id: str) -> list[AuditEvent]:
    with rt.db() as s:
        return [
            e
            for e in s.scalars(select(AuditEvent).where(AuditEvent.action == "push.closed"))
            if e.details.get("challenge") == challenge_id
        ]


def _status(rt: Runtime, challenge_id: str) -> str:
    with rt.db() as s:
        ch = s.get(PushChallenge, challenge_id)
        assert ch is not None
        return ch.status


def test_a_sign_in_finished_with_a_code_closes_the_waiting_push(
    rt: Runtime, holder_with_phone: tuple[a.HolderFixture, ph.Phone]
) -> None:
    h, phone = holder_with_phone
    engine = Engine(rt)
    login = a.login(engine, h)
    started = push.start(rt, a.client(), login.transaction_id)
    listening = ph.Listening(rt, [phone.device_id])
    try:
        engine.complete_code(a.client(), login.transaction_id, h.code())
        events = listening.events(phone.device_id)
    finally:
        listening.close()

    assert _status(rt, started.challenge_id) == PushStatus.CANCELLED
    assert events == [
        {
            "type": "closed",
            "challenge_id": started.challenge_id,
            "status": "cancelled",
            "answered_elsewhere": True,
        }
    ]
    (closed,) = _closed_events(rt, started.challenge_id)
    assert (closed.outcome, closed.reason) == ("success", "answered another way")
    assert closed.actor == f"holder:{closed.person_id}"
    assert closed.details["transaction"] == login.transaction_id
    with pytest.raises(ChallengeClosed):  # too late for the phone
        phone.respond(rt, started.challenge_id, f"{started.number:02d}")


def test_a_reset_confirmed_with_a_code_closes_the_waiting_push(
    rt: Runtime, holder_with_phone: tuple[a.HolderFixture, ph.Phone]
) -> None:
    h, phone = holder_with_phone
    p.lock_by_email(Engine(rt), h.email)
    token = p.newest_reset_link(rt)
    step = recovery.answer(rt, a.client(), token, answers=ANSWERS)
    started = recovery_prompts.start_push(rt, a.client(), token, step.transaction_id, step.key)

    factor_answer.second_factor(
        rt,
        a.client(),
        token,
        step.transaction_id,
        step.key,
        FactorAnswer(method="totp", code=h.code()),
    )

    assert _status(rt, started.challenge_id) == PushStatus.CANCELLED
    assert len(_closed_events(rt, started.challenge_id)) == 1
    assert push_answers.pending_for_device(rt, phone.caller(rt)) == []
