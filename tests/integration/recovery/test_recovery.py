"""Locked card → email with a link (real SMTP) → answers → second factor → new passcode."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from tests.support import auth as a
from tests.support import factories as f
from tests.support import portal as p
from tests.support.notify_servers import SmtpServer

from cardvault.crypto.keyslots import open_passcode_slot
from cardvault.domain.passcode_policy import WeakPasscode
from cardvault.errors import CardvaultError, InvalidInput
from cardvault.notify.outbox import MemoryOutbox
from cardvault.services.cards import enrolment
from cardvault.services.cards.sealing import open_record
from cardvault.services.directory import registry as directory
from cardvault.services.recovery import factor_answer, links, new_passcode, reset_links
from cardvault.services.recovery import reset as recovery
from cardvault.services.recovery.errors import (
    LinkInvalid,
    LinkWornOut,
    RecoveryBlocked,
    RecoveryStepInvalid,
    WrongAnswers,
)
from cardvault.services.signin.engine import Engine
from cardvault.services.signin.errors import FactorFailed, SignInFailed
from cardvault.services.signin.factors import FactorAnswer
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import (
    AuditEvent,
    Card,
    CardSession,
    Certificate,
    Link,
    Notification,
)

RACER = "sprint.holder@example.org"
NEW_PASSCODE = "violet tractor umbrella 1987"
ANSWERS = {1: f.ANSWERS[0], 2: f.ANSWERS[1], 3: f.ANSWERS[2]}


@pytest.fixture
def engine(rt: Runtime) -> Engine:
    return Engine(rt)


def _card(rt: Runtime, card_id: str) -> Card:
    with rt.db() as s:
        card = s.get(Card, card_id)
        assert card is not None
        return card


def _snapshot(rt: Runtime, card_id: str) -> tuple[Any, ...]:
    card = _card(rt, card_id)
    return (card.status, card.record_version, card.key_record, card.failed_attempts)


def _locked_with_link(
    rt: Runtime, operator: Actor, engine: Engine, **kw: str
) -> tuple[a.HolderFixture, str, MemoryOutbox]:
    a.open_org(rt, operator)
    h = a.holder(rt, operator, **kw)
    p.lock(engine, h)
    box = MemoryOutbox()
    p.memory_dispatcher(rt, box).drain()
    (mail,) = [m for m in box.emails if m.to == h.email]
    return h, p.token_in(mail.text), box


def _actions(rt: Runtime, card_id: str) -> list[tuple[str, str, str | None]]:
    with rt.db() as s:
        return [
            (e.action, e.outcome, e.reason)
            for e in s.scalars(
                select(AuditEvent).where(AuditEvent.card_id == card_id).order_by(AuditEvent.seq)
            )
        ]


# --- the lock email over real SMTP ---------------------------------------------------------


def test_lock_email_arrives_over_smtp_with_a_working_link(
    rt: Runtime, operator: Actor, engine: Engine, smtp_server: SmtpServer
) -> None:
    a.open_org(rt, operator)
    h = a.holder(rt, operator, forename="Ann")
    p.lock(engine, h)
    report = p.smtp_dispatcher(rt, smtp_server.port).drain()
    assert report.sent == 1
    (received,) = smtp_server.mailbox.received
    assert received.rcpt_tos == [h.email]
    message = received.message
    assert "locked" in str(message["Subject"])
    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    assert "Hello Ann," in text
    assert "30 minutes" in text
    assert "your Registration Authority" in text  # whom to contact if it was not them
    token = p.token_in(text)
    assert token in html
    page = recovery.open_reset(rt, token)
    assert [q.text for q in page.questions] == list(f.QUESTIONS)
    assert page.tries_left == recovery.LINK_MAX_FAILURES
    with rt.db() as s:
        row = s.scalar(select(Notification))
        assert row is not None
        assert (row.status, row.sealed_secrets) == ("sent", None)
        assert token not in str(row.context)
        link = s.scalar(select(Link))
        assert link is not None
        assert link.token_hash == links.token_hash(token)


def test_a_card_not_yet_enrolled_locks_without_a_reset_email(rt: Runtime, operator: Actor) -> None:
    f.org(rt, operator)
    card = f.issued_card(rt, operator)
    for _ in range(3):
        with pytest.raises(CardvaultError):
            enrolment.enrol(rt, operator, f.enrol_request(card.serial, issuance_passcode="nope!!"))
    assert _card(rt, card.card_id).status == "locked"
    with rt.db() as s:
        assert s.scalar(select(func.count()).select_from(Notification)) == 0
        assert s.scalar(select(func.count()).select_from(Link)) == 0


def test_the_token_is_never_stored_in_clear(rt: Runtime, operator: Actor, engine: Engine) -> None:
    a.open_org(rt, operator)
    h = a.holder(rt, operator)
    p.lock(engine, h)
    with rt.db() as s:
        row = s.scalar(select(Notification))
        assert row is not None
        assert row.sealed_secrets is not None
        assert b"/portal/reset/" not in row.sealed_secrets
        assert "link" not in row.context


# --- the whole reset ---------------------------------------------------------------------


def test_reset_with_two_answers_and_totp_keeps_the_keys(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    h, token, box = _locked_with_link(rt, operator, engine)
    before = open_record(rt.master_key, _card(rt, h.card.card_id))
    with rt.db() as s:
        certs_before = sorted(s.scalars(select(Certificate.fingerprint_sha256)))
    step = recovery.answer(
        rt, a.client(), token, answers={1: "  rex THE dog ", 2: "", 3: "mrs  smith"}
    )
    assert step.step == recovery.STEP_FACTOR
    assert list(step.second_factors) == ["totp"]
    step = factor_answer.second_factor(
        rt,
        a.client(),
        token,
        step.transaction_id,
        step.key,
        FactorAnswer(method="totp", code=h.code()),
    )
    assert step.step == recovery.STEP_PASSCODE
    done = new_passcode.set_passcode(
        rt,
        a.client(),
        token,
        step.transaction_id,
        step.key,
        passcode=NEW_PASSCODE,
        confirm=NEW_PASSCODE,
    )
    assert done.serial == h.card.serial
    card = _card(rt, h.card.card_id)
    assert (card.status, card.failed_attempts, card.recovery_failures) == ("active", 0, 0)
    after = open_record(rt.master_key, card)
    assert after.keys == before.keys  # same DEK, same sealed keys
    with rt.db() as s:
        assert sorted(s.scalars(select(Certificate.fingerprint_sha256))) == certs_before
    with pytest.raises(SignInFailed):
        a.login(engine, h)  # the old passcode
    result = a.login(engine, h, passcode=NEW_PASSCODE, code=h.code(time.time() + 30))
    assert result.session is not None
    with pytest.raises(LinkInvalid, match="already been used"):
        recovery.open_reset(rt, token)
    p.memory_dispatcher(rt, box).drain()
    assert any("passcode was changed" in m.subject for m in box.emails)
    assert ("card.passcode_reset", "success", None) in _actions(rt, h.card.card_id)


def test_sessions_and_other_links_end_with_the_reset(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    a.open_org(rt, operator)
    h = a.holder(rt, operator)
    assert a.login(engine, h, code=h.code()).session is not None
    reset_links.request_reset(rt, a.client(), h.email)
    box = MemoryOutbox()
    p.memory_dispatcher(rt, box).drain()
    token = p.token_in(box.emails[-1].text)
    _complete(rt, token, h)
    with rt.db() as s:
        assert s.scalar(select(func.count()).select_from(CardSession)) == 0
        open_links = select(func.count()).select_from(Link)
        open_links = open_links.where(Link.revoked_at.is_(None), Link.consumed_at.is_(None))
        assert s.scalar(open_links) == 0


def _complete(rt: Runtime, token: str, h: a.HolderFixture) -> recovery.Recovered:
    step = recovery.answer(rt, a.client(), token, answers=ANSWERS)
    if step.step == recovery.STEP_FACTOR:
        step = factor_answer.second_factor(
            rt,
            a.client(),
            token,
            step.transaction_id,
            step.key,
            FactorAnswer(method="totp", code=h.code(time.time() + 30)),  # the login used this step
        )
    return new_passcode.set_passcode(
        rt,
        a.client(),
        token,
        step.transaction_id,
        step.key,
        passcode=NEW_PASSCODE,
        confirm=NEW_PASSCODE,
    )


# --- failures change nothing -------------------------------------------------------------


def test_one_correct_answer_of_three_is_not_enough(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    h, token, _ = _locked_with_link(rt, operator, engine)
    before = _snapshot(rt, h.card.card_id)
    with pytest.raises(WrongAnswers, match="2 tries left"):
        recovery.answer(rt, a.client(), token, answers={1: ANSWERS[1], 2: "York", 3: "Mr Jones"})
    with pytest.raises(InvalidInput, match="at least two"):
        recovery.answer(rt, a.client(), token, answers={1: ANSWERS[1]})
    assert _snapshot(rt, h.card.card_id) == before
    assert ("recovery.answers", "failure", "incorrect security answers") in _actions(
        rt, h.card.card_id
    )


def test_wrong_answers_beyond_the_limit_kill_the_link(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    h, token, _ = _locked_with_link(rt, operator, engine)
    before = _snapshot(rt, h.card.card_id)
    for _ in range(recovery.LINK_MAX_FAILURES - 1):
        with pytest.raises(WrongAnswers):
            recovery.answer(rt, a.client(), token, answers={1: "a", 2: "b", 3: "c"})
    with pytest.raises(LinkWornOut) as dead:
        recovery.answer(rt, a.client(), token, answers={1: "a", 2: "b", 3: "c"})
    assert "Forgotten your passcode" in (dead.value.remedy or "")  # told what to do
    with pytest.raises(LinkWornOut):
        recovery.answer(rt, a.client(), token, answers=ANSWERS)  # right ones: too late
    with pytest.raises(LinkWornOut):
        recovery.open_reset(rt, token)
    assert _snapshot(rt, h.card.card_id) == before


def test_wrong_answers_are_limited_per_card_across_links(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    h, token, _ = _locked_with_link(rt, operator, engine)
    failures = 0
    blocked = None
    for _ in range(5):
        for _ in range(recovery.LINK_MAX_FAILURES):
            try:
                recovery.answer(rt, a.client(), token, answers={1: "x", 2: "y"})
            except RecoveryBlocked as exc:  # the last wrong try says so at once
                blocked = exc
                failures += 1
                break
            except (WrongAnswers, LinkWornOut):
                failures += 1
        if blocked:
            break
        with transaction(rt.db) as s:
            card = s.get(Card, h.card.card_id)
            assert card is not None
            reset_links.send_reset_link(s, rt, operator, card, trigger="ra_unlock")
        box = MemoryOutbox()
        p.memory_dispatcher(rt, box).drain()
        token = p.token_in(box.emails[-1].text)
    assert failures == recovery.CARD_MAX_FAILURES
    assert _card(rt, h.card.card_id).recovery_failures == recovery.CARD_MAX_FAILURES
    assert blocked is not None
    assert "Registration Authority" in (blocked.remedy or "")
    with pytest.raises(RecoveryBlocked):
        recovery.answer(rt, a.client(), token, answers=ANSWERS)


def test_expired_link_fails_cleanly(rt: Runtime, operator: Actor, engine: Engine) -> None:
    h, token, _ = _locked_with_link(rt, operator, engine)
    before = _snapshot(rt, h.card.card_id)
    clock = p.Clock(rt.clock())
    rt.clock = clock
    clock.advance(minutes=31)
    with pytest.raises(LinkInvalid, match="expired"):
        recovery.open_reset(rt, token)
    with pytest.raises(LinkInvalid, match="expired"):
        recovery.answer(rt, a.client(), token, answers=ANSWERS)
    assert _snapshot(rt, h.card.card_id) == before


def test_a_new_link_revokes_the_older_one(rt: Runtime, operator: Actor, engine: Engine) -> None:
    h, old, _ = _locked_with_link(rt, operator, engine)
    with transaction(rt.db) as s:
        card = s.get(Card, h.card.card_id)
        assert card is not None
        reset_links.send_reset_link(s, rt, operator, card, trigger="ra_unlock")
    with pytest.raises(LinkInvalid, match="replaced by a newer one"):
        recovery.answer(rt, a.client(), old, answers=ANSWERS)


def test_link_revoked_mid_reset_stops_the_reset(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    h, token, _ = _locked_with_link(rt, operator, engine)
    step = recovery.answer(rt, a.client(), token, answers=ANSWERS)
    with transaction(rt.db) as s:
        card = s.get(Card, h.card.card_id)
        assert card is not None
        reset_links.send_reset_link(s, rt, operator, card, trigger="ra_unlock")
    with pytest.raises(LinkInvalid):
        factor_answer.second_factor(
            rt,
            a.client(),
            token,
            step.transaction_id,
            step.key,
            FactorAnswer(method="totp", code=h.code()),
        )


def test_weak_new_passcode_changes_nothing_and_can_be_retried(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    h, token, _ = _locked_with_link(rt, operator, engine)
    step = recovery.answer(rt, a.client(), token, answers=ANSWERS)
    step = factor_answer.second_factor(
        rt,
        a.client(),
        token,
        step.transaction_id,
        step.key,
        FactorAnswer(method="totp", code=h.code()),
    )
    before = _snapshot(rt, h.card.card_id)
    for weak, why in (("password1", "common"), ("short", "at least 8"), ("Alice123456", "name")):
        with pytest.raises(WeakPasscode, match=why):
            new_passcode.set_passcode(
                rt, a.client(), token, step.transaction_id, step.key, passcode=weak, confirm=weak
            )
    with pytest.raises(InvalidInput, match="not the same"):
        new_passcode.set_passcode(
            rt,
            a.client(),
            token,
            step.transaction_id,
            step.key,
            passcode=NEW_PASSCODE,
            confirm=NEW_PASSCODE + "x",
        )
    assert _snapshot(rt, h.card.card_id) == before
    new_passcode.set_passcode(
        rt,
        a.client(),
        token,
        step.transaction_id,
        step.key,
        passcode=NEW_PASSCODE,
        confirm=NEW_PASSCODE,
    )
    assert _card(rt, h.card.card_id).status == "active"


def test_missing_or_wrong_second_factor_changes_nothing(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    h, token, _ = _locked_with_link(rt, operator, engine)
    step = recovery.answer(rt, a.client(), token, answers=ANSWERS)
    before = _snapshot(rt, h.card.card_id)
    with pytest.raises(RecoveryStepInvalid):
        new_passcode.set_passcode(
            rt,
            a.client(),
            token,
            step.transaction_id,
            step.key,
            passcode=NEW_PASSCODE,
            confirm=NEW_PASSCODE,
        )
    wrong = "000000" if h.code() != "000000" else "111111"
    with pytest.raises(FactorFailed, match="tries left"):
        factor_answer.second_factor(
            rt,
            a.client(),
            token,
            step.transaction_id,
            step.key,
            FactorAnswer(method="totp", code=wrong),
        )
    with pytest.raises(InvalidInput):
        factor_answer.second_factor(
            rt, a.client(), token, step.transaction_id, step.key, FactorAnswer(method="fido2")
        )
    with pytest.raises(RecoveryStepInvalid):  # another browser without K
        factor_answer.second_factor(
            rt,
            a.client(),
            token,
            step.transaction_id,
            bytes(32),
            FactorAnswer(method="totp", code=h.code()),
        )
    assert _snapshot(rt, h.card.card_id) == before


def test_policy_may_waive_the_second_factor(rt: Runtime, operator: Actor, engine: Engine) -> None:
    _, token, _ = _locked_with_link(rt, operator, engine)
    directory.update_policy(rt, operator, "ORG1", {"recovery_requires_second_factor": False})
    step = recovery.answer(rt, a.client(), token, answers=ANSWERS)
    assert step.step == recovery.STEP_PASSCODE
    assert step.second_factors == ()


def test_recovery_code_works_in_place_of_the_answers_once(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    a.open_org(rt, operator)
    card = f.issued_card(rt, operator, email="coded@example.org")
    enrolled = enrolment.enrol(rt, operator, f.enrol_request(card.serial, recovery_code=True))
    assert enrolled.recovery_code
    reset_links.request_reset(rt, a.client(), "coded@example.org")
    box = MemoryOutbox()
    p.memory_dispatcher(rt, box).drain()
    token = p.token_in(box.emails[-1].text)
    assert recovery.open_reset(rt, token).has_recovery_code
    with pytest.raises(WrongAnswers):
        recovery.answer(rt, a.client(), token, recovery_code="AAAA-" * 7 + "AAAA")
    step = recovery.answer(rt, a.client(), token, recovery_code=enrolled.recovery_code.lower())
    assert step.step == recovery.STEP_PASSCODE  # no second factor bound
    done = new_passcode.set_passcode(
        rt,
        a.client(),
        token,
        step.transaction_id,
        step.key,
        passcode=NEW_PASSCODE,
        confirm=NEW_PASSCODE,
    )
    assert done.recovery_code_used
    record = open_record(rt.master_key, _card(rt, card.card_id))
    assert "recovery-code" not in [s.name for s in record.slots]
    open_passcode_slot(record, NEW_PASSCODE)


# --- concurrency -------------------------------------------------------------------------


def _race(n: int, work: Callable[[int], object]) -> tuple[list[object], list[BaseException]]:
    barrier = threading.Barrier(n)
    results: list[object] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        barrier.wait()
        try:
            value = work(i)
        except BaseException as exc:
            with lock:
                errors.append(exc)
        else:
            with lock:
                results.append(value)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results, errors


def _locked_without_factor(rt: Runtime, operator: Actor, engine: Engine) -> tuple[str, str, str]:
    a.open_org(rt, operator)
    card = f.active_card(rt, operator, email=RACER)
    from cardvault.services.signin.engine import LoginRequest

    for _ in range(3):
        with pytest.raises(SignInFailed):
            engine.login(
                a.client(),
                LoginRequest(
                    identifier_kind="email",
                    identifier="sprint.holder@example.org",
                    passcode=p.WRONG,
                ),
            )
    box = MemoryOutbox()
    p.memory_dispatcher(rt, box).drain()
    return card.card_id, card.serial, p.token_in(box.emails[-1].text)


def test_twenty_concurrent_completions_succeed_exactly_once(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    card_id, _, token = _locked_without_factor(rt, operator, engine)
    steps = [recovery.answer(rt, a.client(), token, answers=ANSWERS) for _ in range(20)]
    passcodes = [f"{NEW_PASSCODE} racer {i}" for i in range(20)]

    def complete(i: int) -> str:
        new_passcode.set_passcode(
            rt,
            a.client(),
            token,
            steps[i].transaction_id,
            steps[i].key,
            passcode=passcodes[i],
            confirm=passcodes[i],
        )
        return passcodes[i]

    results, errors = _race(20, complete)
    assert len(results) == 1, errors
    assert len(errors) == 19
    assert all(isinstance(e, CardvaultError) for e in errors), errors
    record = open_record(rt.master_key, _card(rt, card_id))
    open_passcode_slot(record, str(results[0]))
    with rt.db() as s:
        resets = s.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "card.passcode_reset")
        )
    assert resets == 1


def test_twenty_concurrent_whole_redemptions_succeed_exactly_once(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    card_id, _, token = _locked_without_factor(rt, operator, engine)

    def redeem(i: int) -> str:
        step = recovery.answer(rt, a.client(), token, answers=ANSWERS)
        passcode = f"{NEW_PASSCODE} whole {i}"
        new_passcode.set_passcode(
            rt,
            a.client(),
            token,
            step.transaction_id,
            step.key,
            passcode=passcode,
            confirm=passcode,
        )
        return passcode

    results, errors = _race(20, redeem)
    assert len(results) == 1, errors
    assert all(isinstance(e, CardvaultError) for e in errors), errors
    card = _card(rt, card_id)
    assert card.status == "active"
    open_passcode_slot(open_record(rt.master_key, card), str(results[0]))


# --- forgotten passcode ------------------------------------------------------------------


def test_forgotten_passcode_answers_alike_for_known_and_unknown(
    rt: Runtime, operator: Actor
) -> None:
    rt.settings.reset_request_min_seconds = 0.3
    a.open_org(rt, operator)
    h = a.holder(rt, operator, forename="Ann")
    timings = []
    for identifier in (h.email, "nobody@example.org", h.card.user_id, "999999999999", "??"):
        started = time.monotonic()
        assert reset_links.request_reset(rt, a.client(), identifier) is None
        timings.append(time.monotonic() - started)
    assert min(timings) >= 0.3
    assert max(timings) - min(timings) < 0.25
    box = MemoryOutbox()
    p.memory_dispatcher(rt, box).drain()
    assert [m.to for m in box.emails] == [h.email, h.email]
    mail = box.emails[0]
    assert "Reset your" in mail.subject
    assert "Hello Ann" in mail.text
    assert "ignore this email" in mail.text
    assert mail.html is not None
    assert p.token_in(mail.text) in mail.html  # a button and a plain address
    with pytest.raises(InvalidInput):
        reset_links.request_reset(rt, a.client(), "   ")


def test_forgotten_passcode_sends_a_few_emails_an_hour_at_most(
    rt: Runtime, operator: Actor
) -> None:
    rt.settings.reset_request_min_seconds = 0
    a.open_org(rt, operator)
    h = a.holder(rt, operator)
    for _ in range(reset_links.REQUESTS_PER_HOUR + 2):
        reset_links.request_reset(rt, a.client(), h.email)
    box = MemoryOutbox()
    p.memory_dispatcher(rt, box).drain()
    assert len(box.emails) == reset_links.REQUESTS_PER_HOUR


def test_a_card_the_ra_locked_is_not_unlocked_by_the_holder(rt: Runtime, operator: Actor) -> None:
    rt.settings.reset_request_min_seconds = 0
    a.open_org(rt, operator)
    h = a.holder(rt, operator)
    from cardvault.services.signin import lockout

    with transaction(rt.db) as s:
        card = s.get(Card, h.card.card_id)
        assert card is not None
        lockout.lock_in_session(s, rt, operator, card, reason="reported stolen")
    reset_links.request_reset(rt, a.client(), h.email)
    box = MemoryOutbox()
    p.memory_dispatcher(rt, box).drain()
    assert box.emails == []
    assert ("portal.reset_requested", "failure", "card is locked (reported stolen)") in _actions(
        rt, h.card.card_id
    )
