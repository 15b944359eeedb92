"""My card: a signed-in holder changes their passcode, questions and recovery code, removes
and lists their methods, and reads their card's recent use (services/holders)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import delete, func, select
from tests.support import auth as a
from tests.support import factories as f

from cardvault.crypto.keyslots import (
    WrongSecret,
    open_passcode_slot,
    open_recovery_code_slot,
    open_recovery_slots,
)
from cardvault.domain.passcode_policy import WeakPasscode
from cardvault.errors import InvalidInput, NotFound
from cardvault.services.cards import methods as card_methods
from cardvault.services.cards.enrolment import SecurityAnswer
from cardvault.services.cards.sealing import open_record
from cardvault.services.directory import registry as directory
from cardvault.services.holders import account, activity
from cardvault.services.holders import methods as holder_methods
from cardvault.services.signin.engine import Engine
from cardvault.services.signin.errors import SessionInvalid, WrongPasscode
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import AuditEvent, Card, CardSession, Notification

NEW = "quiet meadow lantern ninety"
NEW_ANSWERS = (
    SecurityAnswer(question="Name of my first school?", answer="Hilltop Primary"),
    SecurityAnswer(question="Street I grew up on?", answer="Acacia Avenue"),
    SecurityAnswer(question="My grandmother's first name?", answer="Winifred"),
)


def _signed_in(rt: Runtime, h: a.HolderFixture, step: int = 0) -> str:
    """A holder session; ``step`` picks the TOTP time step (a code works once)."""
    result = a.login(Engine(rt), h, code=h.code(time.time() + 30 * step))
    assert result.session is not None
    return result.session.session_id


def _card(rt: Runtime, h: a.HolderFixture) -> Card:
    with rt.db() as s:
        card = s.get(Card, h.card.card_id)
        assert card is not None
        return card


def _emails(rt: Runtime, template: str) -> list[str]:
    with rt.db() as s:
        return list(
            s.scalars(select(Notification.recipient).where(Notification.template == template))
        )


def _actions(rt: Runtime, card_id: str) -> list[str]:
    with rt.db() as s:
        return list(s.scalars(select(AuditEvent.action).where(AuditEvent.card_id == card_id)))


def test_change_passcode_replaces_the_slot_and_ends_every_other_session(
    rt: Runtime, operator: Actor
) -> None:
    a.open_org(rt, operator)
    h = a.holder(rt, operator)
    other = _signed_in(rt, h, step=-1)
    mine = _signed_in(rt, h)
    ended = account.change_passcode(
        rt, a.client(), mine, current=f.STRONG_PASSCODE, passcode=NEW, confirm=NEW
    )
    assert ended == 1
    record = open_record(rt.master_key, _card(rt, h))
    open_passcode_slot(record, NEW)
    with pytest.raises(WrongSecret):
        open_passcode_slot(record, f.STRONG_PASSCODE)
    with rt.db() as s:
        assert s.get(CardSession, other) is None
        assert s.get(CardSession, mine) is not None
    assert _emails(rt, "passcode_changed") == [h.email]
    assert "card.passcode_changed" in _actions(rt, h.card.card_id)
    assert account.my_card(rt, a.client(), mine).serial == h.card.serial


def test_a_wrong_current_passcode_counts_toward_the_lock_and_changes_nothing(
    rt: Runtime, operator: Actor
) -> None:
    a.open_org(rt, operator)
    h = a.holder(rt, operator)
    mine = _signed_in(rt, h)
    before = _card(rt, h).record_version
    with pytest.raises(WrongPasscode) as caught:
        account.change_passcode(
            rt, a.client(), mine, current="not it at all", passcode=NEW, confirm=NEW
        )
    assert caught.value.attempts_left == 2
    card = _card(rt, h)
    assert card.failed_attempts == 1
    assert card.record_version == before
    assert _emails(rt, "passcode_changed") == []
    with rt.db() as s:
        failures = s.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "holder.passcode", AuditEvent.outcome == "failure")
        )
    assert failures == 1


@pytest.mark.parametrize(
    ("passcode", "confirm", "error", "field"),
    [
        ("password", "password", WeakPasscode, None),
        (NEW, NEW + "x", InvalidInput, "confirm"),
        (f.STRONG_PASSCODE, f.STRONG_PASSCODE, InvalidInput, "passcode"),
        ("", "", InvalidInput, "passcode"),
    ],
)
def test_a_bad_new_passcode_is_refused_before_the_card_is_opened(
    rt: Runtime,
    operator: Actor,
    passcode: str,
    confirm: str,
    error: type[Exception],
    field: str | None,
) -> None:
    a.open_org(rt, operator)
    h = a.holder(rt, operator)
    mine = _signed_in(rt, h)
    with pytest.raises(error) as caught:
        account.change_passcode(
            rt, a.client(), mine, current=f.STRONG_PASSCODE, passcode=passcode, confirm=confirm
        )
    assert getattr(caught.value, "field", None) == field
    assert _card(rt, h).failed_attempts == 0


def test_change_questions_rebuilds_the_recovery_slots(rt: Runtime, operator: Actor) -> None:
    a.open_org(rt, operator)
    h = a.holder(rt, operator)
    mine = _signed_in(rt, h)
    account.change_questions(rt, a.client(), mine, current=f.STRONG_PASSCODE, answers=NEW_ANSWERS)
    record = open_record(rt.master_key, _card(rt, h))
    open_recovery_slots(record, {1: "hilltop  primary", 3: "WINIFRED"})
    with pytest.raises(WrongSecret):
        open_recovery_slots(record, {1: f.ANSWERS[0], 2: f.ANSWERS[1]})
    shown = account.my_card(rt, a.client(), mine)
    assert shown.questions == tuple(q.question for q in NEW_ANSWERS)
    assert _emails(rt, "card_changed") == [h.email]


def test_questions_with_a_repeated_answer_are_refused(rt: Runtime, operator: Actor) -> None:
    a.open_org(rt, operator)
    h = a.holder(rt, operator)
    mine = _signed_in(rt, h)
    same = (*NEW_ANSWERS[:2], SecurityAnswer(question="Another?", answer="acacia avenue"))
    with pytest.raises(InvalidInput) as caught:
        account.change_questions(rt, a.client(), mine, current=f.STRONG_PASSCODE, answers=same)
    assert caught.value.field == "answer3"
    assert "card.security_questions_changed" not in _actions(rt, h.card.card_id)


def test_a_new_recovery_code_replaces_the_old_one(rt: Runtime, operator: Actor) -> None:
    a.open_org(rt, operator)
    h = a.holder(rt, operator)
    mine = _signed_in(rt, h)
    assert not account.my_card(rt, a.client(), mine).has_recovery_code
    first = account.renew_recovery_code(rt, a.client(), mine, current=f.STRONG_PASSCODE).code
    second = account.renew_recovery_code(rt, a.client(), mine, current=f.STRONG_PASSCODE).code
    assert first != second
    record = open_record(rt.master_key, _card(rt, h))
    open_recovery_code_slot(record, second)
    with pytest.raises(WrongSecret):
        open_recovery_code_slot(record, first)
    assert account.my_card(rt, a.client(), mine).has_recovery_code
    assert _actions(rt, h.card.card_id).count("card.recovery_code_renewed") == 2


def test_removing_a_method_tells_the_ras_and_stays_within_the_card(
    rt: Runtime, operator: Actor
) -> None:
    a.open_org(rt, operator)
    ra_email = "rana.agent@example.org"
    ra = f.person(rt, operator, "ORG1", forename="Rana", email=ra_email)
    directory.grant_role(rt, operator, user_id=ra, org_code="ORG1", role="ra_agent")
    h = a.holder(rt, operator)
    stranger = a.holder(rt, operator)
    mine = _signed_in(rt, h)
    listed = holder_methods.my_methods(rt, a.client(), mine)
    assert [(m.kind, m.removable) for m in listed] == [("totp", True)]
    (theirs,) = card_methods.list_methods(rt, stranger.card.serial)
    with pytest.raises(NotFound):
        holder_methods.remove(
            rt, a.client(), mine, kind="totp", method_id=theirs.id, current=f.STRONG_PASSCODE
        )
    with pytest.raises(WrongPasscode):
        holder_methods.remove(
            rt, a.client(), mine, kind="totp", method_id=listed[0].id, current="not it at all"
        )
    assert len(holder_methods.my_methods(rt, a.client(), mine)) == 1
    holder_methods.remove(
        rt, a.client(), mine, kind="totp", method_id=listed[0].id, current=f.STRONG_PASSCODE
    )
    assert holder_methods.my_methods(rt, a.client(), mine) == []
    assert _emails(rt, "holder_method_removed") == [ra_email]
    with pytest.raises(InvalidInput):
        holder_methods.remove(
            rt, a.client(), mine, kind="ad_account", method_id=theirs.id, current=f.STRONG_PASSCODE
        )


def test_a_signed_out_session_can_change_nothing(rt: Runtime, operator: Actor) -> None:
    a.open_org(rt, operator)
    h = a.holder(rt, operator)
    mine = _signed_in(rt, h)
    with rt.db.begin() as s:
        s.execute(delete(CardSession).where(CardSession.id == mine))
    with pytest.raises(SessionInvalid):
        account.change_passcode(
            rt, a.client(), mine, current=f.STRONG_PASSCODE, passcode=NEW, confirm=NEW
        )
    assert _card(rt, h).failed_attempts == 0


def test_recent_use_reads_in_words_with_the_address(rt: Runtime, operator: Actor) -> None:
    a.open_org(rt, operator)
    h = a.holder(rt, operator)
    a.login(Engine(rt), h, code="000000")
    mine = _signed_in(rt, h)
    lines = activity.recent(rt, a.client(), mine)
    texts = [line.text for line in lines]
    assert texts[0] == "Signed in from 127.0.0.1 with an authenticator code"
    assert "Second sign-in step failed (from 127.0.0.1)" in texts
    assert "Card session started" not in texts
    assert any(line.failed for line in lines)
