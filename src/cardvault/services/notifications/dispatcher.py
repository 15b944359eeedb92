"""The outbox dispatcher: sends queued notifications after commit, once, with back-off.

Any number of dispatchers may run (one inside each ``cardvault serve``, plus an operator's
``cardvault notify dispatch``). A dispatcher *claims* a due row with one conditional UPDATE
(pending and due, or a sending row whose lease ran out because its dispatcher died) and
only then sends it, so two dispatchers never send the same message. The message id is the
row id, passed on as Message-ID / Idempotency-Key, so that the one duplicate a crash
between "sent" and "marked sent" can cause is recognisably the same message.

A temporary failure is retried with exponential back-off; a permanent one, or the last
attempt, marks the row failed, erases its sealed link or code, and writes an audit event
in the organisation's chain, where the RA sees it (:func:`notifications.failed`).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, event, or_, select, update
from sqlalchemy.orm import Session

from cardvault.config import Settings
from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.vocabulary import NotificationStatus
from cardvault.errors import CardvaultError
from cardvault.notify.message import EmailMessage
from cardvault.notify.outbox import FileOutbox
from cardvault.notify.ports import DeliveryFailed, EmailSender, SmsSender
from cardvault.notify.sms_govuk_notify import GovUkNotifySmsSender
from cardvault.notify.sms_webhook import WebhookSmsSender
from cardvault.notify.smtp import SmtpSender
from cardvault.services.audit import trail as audit
from cardvault.services.notifications.outbox import ENQUEUED, message_of
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import Notification

log = logging.getLogger("cardvault.notify")

LEASE_SECONDS = 120
BATCH = 20
MAX_DELAY_SECONDS = 3600
MAX_ERROR_LENGTH = 500


@dataclass(frozen=True, kw_only=True)
class Senders:
    """The email and SMS senders the dispatcher hands messages to."""

    email: EmailSender
    sms: SmsSender


@dataclass(kw_only=True)
class Report:
    """How many messages a run sent, will retry, and gave up on."""

    sent: int = 0
    retrying: int = 0
    failed: int = 0

    def add(self, other: Report) -> None:
        """Add another report's counts to this one."""
        self.sent += other.sent
        self.retrying += other.retrying
        self.failed += other.failed


def senders_from_settings(settings: Settings) -> Senders:
    """The composition the settings ask for (docs/operator/notifications.md)."""
    outbox = FileOutbox(settings.outbox_dir, from_address=settings.mail_from)
    email: EmailSender = outbox
    if settings.mail_mode == "smtp":
        email = SmtpSender(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=settings.smtp_security,
            from_address=settings.mail_from,
            username=settings.smtp_username,
            password=settings.smtp_password,
            timeout=settings.smtp_timeout_seconds,
        )
    sms: SmsSender = outbox
    if settings.sms_mode == "webhook":
        sms = WebhookSmsSender(
            url=settings.sms_webhook_url or "", token=settings.sms_webhook_token or ""
        )
    elif settings.sms_mode == "govuk_notify":
        sms = GovUkNotifySmsSender(
            api_key=settings.sms_govuk_notify_api_key or "",
            template_id=settings.sms_govuk_notify_template_id or "",
        )
    return Senders(email=email, sms=sms)


def retry_delay(attempts: int, base_seconds: float) -> timedelta:
    """Exponential back-off with up to 10 % jitter, capped at an hour."""
    delay = min(base_seconds * 2 ** max(attempts - 1, 0), MAX_DELAY_SECONDS)
    jitter = delay * secrets.randbelow(101) / 1000
    return timedelta(seconds=delay + jitter)


def _worker_id() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{secrets.token_hex(4)}"


class Dispatcher:
    """Claims due notifications and sends them through ``senders``."""

    def __init__(self, rt: Runtime, senders: Senders, *, worker_id: str | None = None) -> None:
        self.rt = rt
        self.senders = senders
        self.worker_id = worker_id or _worker_id()
        self.actor = Actor.system()

    def run_once(self, *, limit: int = BATCH) -> Report:
        """Claim up to ``limit`` due messages and try each once."""
        report = Report()
        for notification_id in self.claim(limit):
            report.add(self.deliver(notification_id))
        return report

    def drain(self, *, max_rounds: int = 100) -> Report:
        """Send until nothing is due now (messages waiting for a retry stay queued)."""
        total = Report()
        for _ in range(max_rounds):
            report = self.run_once()
            total.add(report)
            if not (report.sent or report.retrying or report.failed):
                break
        return total

    # -- claiming ----------------------------------------------------------------------------

    def _claimable(self, now: datetime) -> Any:
        return or_(
            and_(
                Notification.status == NotificationStatus.PENDING,
                Notification.next_attempt_at <= now,
            ),
            and_(
                Notification.status == NotificationStatus.SENDING, Notification.claimed_until < now
            ),
        )

    def claim(self, limit: int) -> list[str]:
        """Claim up to ``limit`` due messages (pending, or sending for too long); their ids."""
        now = self.rt.clock()
        with self.rt.db() as session:
            candidates = list(
                session.scalars(
                    select(Notification.id)
                    .where(self._claimable(now))
                    .order_by(Notification.next_attempt_at)
                    .limit(limit)
                )
            )
        won: list[str] = []
        for notification_id in candidates:
            with transaction(self.rt.db) as session:
                claimed = session.scalar(
                    update(Notification)
                    .where(Notification.id == notification_id, self._claimable(now))
                    .values(
                        status=NotificationStatus.SENDING,
                        claimed_by=self.worker_id,
                        claimed_until=now + timedelta(seconds=LEASE_SECONDS),
                        attempts=Notification.attempts + 1,
                    )
                    .returning(Notification.id)
                )
            if claimed is not None:
                won.append(claimed)
        return won

    # -- sending -----------------------------------------------------------------------------

    def deliver(self, notification_id: str) -> Report:
        # read, then leave the session: on SQLite even a read holds the write lock
        """Send one claimed message and record the outcome: a refusal (DeliveryFailed, or any
        CardvaultError of a sender) is recorded as a retry or a failure, not raised."""
        with self.rt.db() as session:
            row = session.get(Notification, notification_id)
        assert row is not None
        if row.expires_at is not None and self.rt.clock() >= row.expires_at:
            return self._fail(row, "Its link or code expired before it could be sent.")
        try:
            message = message_of(self.rt, row)
        except CardvaultError as exc:
            return self._fail(row, f"It could not be prepared: {exc.message}")
        try:
            if isinstance(message, EmailMessage):
                self.senders.email.send(message)
            else:
                self.senders.sms.send(message)
        except DeliveryFailed as exc:
            return self._after_failure(row, exc)
        except CardvaultError as exc:  # a sender refusing its own settings: fixable, so retry
            return self._after_failure(row, DeliveryFailed(exc.message, permanent=False))
        return self._sent(row)

    def _mine(self, session: Session, row: Notification) -> Notification | None:
        """The row, locked, if our claim still holds (else another dispatcher has it)."""
        current = session.get(Notification, row.id, with_for_update=True)
        if current is None or current.claimed_by != self.worker_id:
            return None
        return current

    def _sent(self, row: Notification) -> Report:
        with transaction(self.rt.db) as session:
            current = self._mine(session, row)
            if current is None:
                return Report()
            current.status, current.sent_at = NotificationStatus.SENT, self.rt.clock()
            current.sealed_secrets, current.claimed_by, current.claimed_until = None, None, None
            current.last_error = None
            self._audit(session, current, "success", None)
        return Report(sent=1)

    def _after_failure(self, row: Notification, exc: DeliveryFailed) -> Report:
        if exc.permanent or row.attempts >= self.rt.settings.notify_max_attempts:
            reason = exc.message if exc.permanent else f"Gave up after {row.attempts} attempts: "
            return self._fail(row, reason if exc.permanent else reason + exc.message)
        with transaction(self.rt.db) as session:
            current = self._mine(session, row)
            if current is None:
                return Report()
            current.status = NotificationStatus.PENDING
            current.claimed_by, current.claimed_until = None, None
            current.last_error = exc.message[:MAX_ERROR_LENGTH]
            current.next_attempt_at = self.rt.clock() + retry_delay(
                current.attempts, self.rt.settings.notify_retry_base_seconds
            )
        log.warning("notification %s not sent yet: %s", row.id, exc.message)
        return Report(retrying=1)

    def _fail(self, row: Notification, reason: str) -> Report:
        with transaction(self.rt.db) as session:
            current = self._mine(session, row)
            if current is None:
                return Report()
            current.status, current.failed_at = NotificationStatus.FAILED, self.rt.clock()
            current.sealed_secrets, current.claimed_by, current.claimed_until = None, None, None
            current.last_error = reason[:MAX_ERROR_LENGTH]
            self._audit(session, current, "failure", current.last_error)
        log.error("notification %s failed for good: %s", row.id, reason)
        return Report(failed=1)

    def _audit(self, session: Session, row: Notification, outcome: str, reason: str | None) -> None:
        audit.record(
            session,
            self.rt,
            self.actor,
            action=AuditAction.NOTIFICATION_SENT
            if outcome == "success"
            else AuditAction.NOTIFICATION_FAILED,
            outcome=outcome,
            reason=reason,
            organisation_id=row.organisation_id,
            card_id=row.card_id,
            details={
                "notification": row.id,
                "channel": row.channel,
                "template": row.template,
                "attempts": row.attempts,
            },
        )


class Background:
    """A dispatcher on a daemon thread: polls, and wakes at once after a commit that queued."""

    def __init__(self, dispatcher: Dispatcher, *, poll_seconds: float) -> None:
        self.dispatcher = dispatcher
        self.poll_seconds = poll_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cardvault-notify", daemon=True)

    def start(self) -> Background:
        """Start the background thread, woken after every commit."""
        event.listen(self.dispatcher.rt.db, "after_commit", self._after_commit)
        self._thread.start()
        return self

    def wake(self) -> None:
        """Look for due messages now."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread, waiting up to ``timeout`` seconds for it."""
        self._stop.set()
        self._wake.set()
        if event.contains(self.dispatcher.rt.db, "after_commit", self._after_commit):
            event.remove(self.dispatcher.rt.db, "after_commit", self._after_commit)
        self._thread.join(timeout)

    def _after_commit(self, session: Session) -> None:
        if session.info.pop(ENQUEUED, False):
            self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.dispatcher.drain()
            except Exception:  # the loop must outlive a database hiccup; the next round retries
                log.exception("the notification dispatcher failed; retrying")
            self._wake.wait(self.poll_seconds)


def start_background(rt: Runtime, senders: Senders | None = None) -> Background:
    """Start a dispatcher in a background thread, with the configured senders."""
    dispatcher = Dispatcher(rt, senders or senders_from_settings(rt.settings))
    return Background(dispatcher, poll_seconds=rt.settings.notify_poll_seconds).start()
