"""The outbox dispatcher on a real database: once, after commit, with back-off, failures seen."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select
from tests.support import factories as f
from tests.support import portal as p

from cardvault.notify.outbox import MemoryOutbox
from cardvault.notify.ports import DeliveryFailed
from cardvault.services.notifications import outbox as notifications
from cardvault.services.notifications.dispatcher import (
    Dispatcher,
    Senders,
    retry_delay,
    start_background,
)
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import AuditEvent, Card, Notification


def _queue(rt: Runtime, operator: Actor, n: int = 1) -> tuple[str, list[str]]:
    f.org(rt, operator)
    card = f.active_card(rt, operator, email="queued@example.org")
    ids = []
    with transaction(rt.db) as s:
        row = s.get(Card, card.card_id)
        assert row is not None
        for _ in range(n):
            nid = notifications.passcode_changed(s, rt, row)
            assert nid is not None
            ids.append(nid)
    return card.card_id, ids


def _row(rt: Runtime, nid: str) -> Notification:
    with rt.db() as s:
        row = s.get(Notification, nid)
        assert row is not None
        return row


def test_nothing_is_queued_when_the_transaction_rolls_back(rt: Runtime, operator: Actor) -> None:
    f.org(rt, operator)
    card = f.active_card(rt, operator)

    def change_that_fails() -> None:
        with transaction(rt.db) as s:
            row = s.get(Card, card.card_id)
            assert row is not None
            notifications.passcode_changed(s, rt, row)
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        change_that_fails()
    with rt.db() as s:
        assert s.scalar(select(Notification)) is None


def test_sent_once_with_its_id_as_message_id(rt: Runtime, operator: Actor) -> None:
    _, (nid,) = _queue(rt, operator)
    box = MemoryOutbox()
    dispatcher = p.memory_dispatcher(rt, box)
    assert dispatcher.drain().sent == 1
    assert dispatcher.drain().sent == 0
    (mail,) = box.emails
    assert mail.message_id == nid
    assert mail.to == "queued@example.org"
    row = _row(rt, nid)
    assert (row.status, row.attempts, row.claimed_by) == ("sent", 1, None)


def test_temporary_failure_is_retried_with_back_off(rt: Runtime, operator: Actor) -> None:
    _, (nid,) = _queue(rt, operator)
    clock = p.Clock(rt.clock())
    rt.clock = clock
    box = MemoryOutbox(failures=[DeliveryFailed("mail server down", permanent=False)] * 2)
    dispatcher = p.memory_dispatcher(rt, box)
    assert dispatcher.drain().retrying == 1
    row = _row(rt, nid)
    assert row.status == "pending"
    assert row.last_error == "mail server down"
    first_wait = row.next_attempt_at - clock.now
    assert timedelta(seconds=30) <= first_wait <= timedelta(seconds=33)
    assert dispatcher.drain().retrying == 0  # not due yet
    clock.advance(seconds=34)
    assert dispatcher.drain().retrying == 1
    second_wait = _row(rt, nid).next_attempt_at - clock.now
    assert second_wait >= timedelta(seconds=60)
    clock.advance(seconds=70)
    assert dispatcher.drain().sent == 1
    assert len(box.emails) == 1
    assert _row(rt, nid).attempts == 3


def test_back_off_is_capped() -> None:
    assert retry_delay(1, 30) >= timedelta(seconds=30)
    assert retry_delay(30, 30) <= timedelta(seconds=3600 * 1.1)


def test_permanent_failure_is_visible_to_the_ra_and_audited(rt: Runtime, operator: Actor) -> None:
    card_id, (nid,) = _queue(rt, operator)
    box = MemoryOutbox(failures=[DeliveryFailed("no such mailbox", permanent=True)])
    assert p.memory_dispatcher(rt, box).drain().failed == 1
    row = _row(rt, nid)
    assert (row.status, row.sealed_secrets) == ("failed", None)
    with rt.db() as s:
        org_id = s.get(Card, card_id).organisation_id  # type: ignore[union-attr]
        event = s.scalar(select(AuditEvent).where(AuditEvent.action == "notification.failed"))
    assert event is not None
    assert (event.reason, event.organisation_id, event.card_id) == (
        "no such mailbox",
        org_id,
        card_id,
    )
    (seen,) = notifications.failed(rt, org_id)
    assert (seen.id, seen.template, seen.last_error) == (nid, "passcode_changed", "no such mailbox")
    assert notifications.failed(rt, "another-organisation") == []


def test_gives_up_after_the_configured_attempts(rt: Runtime, operator: Actor) -> None:
    _, (nid,) = _queue(rt, operator)
    rt.settings.notify_max_attempts = 2
    clock = p.Clock(rt.clock())
    rt.clock = clock
    box = MemoryOutbox(failures=[DeliveryFailed("timeout", permanent=False)] * 5)
    dispatcher = p.memory_dispatcher(rt, box)
    dispatcher.drain()
    clock.advance(hours=2)
    assert dispatcher.drain().failed == 1
    assert _row(rt, nid).last_error == "Gave up after 2 attempts: timeout"


def test_a_message_whose_link_expired_is_not_sent(rt: Runtime, operator: Actor) -> None:
    f.org(rt, operator)
    card = f.active_card(rt, operator)
    from cardvault.services.recovery import reset_links

    with transaction(rt.db) as s:
        row = s.get(Card, card.card_id)
        assert row is not None
        reset_links.send_reset_link(s, rt, operator, row, trigger="requested")
    clock = p.Clock(rt.clock())
    rt.clock = clock
    clock.advance(minutes=31)
    box = MemoryOutbox()
    assert p.memory_dispatcher(rt, box).drain().failed == 1
    assert box.emails == []


def test_two_dispatchers_never_send_the_same_message(rt: Runtime, operator: Actor) -> None:
    _queue(rt, operator, n=30)
    sent: list[str] = []
    lock = threading.Lock()

    class Counting(MemoryOutbox):
        def send(self, message: object) -> None:  # type: ignore[override]
            with lock:
                sent.append(message.message_id)  # type: ignore[attr-defined]

    box = Counting()
    dispatchers = [Dispatcher(rt, Senders(email=box, sms=box)) for _ in range(4)]
    barrier = threading.Barrier(len(dispatchers))

    def run(d: Dispatcher) -> None:
        barrier.wait()
        d.drain()

    threads = [threading.Thread(target=run, args=(d,)) for d in dispatchers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(sent) == 30
    assert len(set(sent)) == 30


def test_a_crashed_dispatchers_claim_is_taken_over_after_its_lease(
    rt: Runtime, operator: Actor
) -> None:
    _, (nid,) = _queue(rt, operator)
    clock = p.Clock(rt.clock())
    rt.clock = clock
    crashed = p.memory_dispatcher(rt)
    assert crashed.claim(10) == [nid]  # ... and it dies before sending
    box = MemoryOutbox()
    survivor = p.memory_dispatcher(rt, box)
    assert survivor.drain().sent == 0
    clock.advance(minutes=3)
    assert survivor.drain().sent == 1
    assert [m.message_id for m in box.emails] == [nid]
    assert crashed.deliver(nid).sent == 0  # the late one finds its claim gone


def test_background_dispatcher_sends_right_after_commit(rt: Runtime, operator: Actor) -> None:
    rt.settings.notify_poll_seconds = 60  # so only the commit hook can explain a quick send
    box = MemoryOutbox()
    background = start_background(rt, Senders(email=box, sms=box))
    try:
        _, (nid,) = _queue(rt, operator)
        for _ in range(100):
            if box.emails:
                break
            threading.Event().wait(0.05)
    finally:
        background.stop()
    assert [m.message_id for m in box.emails] == [nid]
