"""Senders that deliver into a directory (development) or into memory (tests).

In development nobody has an SMTP server or an SMS gateway, yet a newcomer must be able to
click the link in the "card locked" email. :class:`FileOutbox` writes each message as a
file (``<timestamp>-<message_id>.eml`` or ``.sms.json``) that the development portal lists
and shows, and that any mail client opens.

Both outboxes are idempotent per ``message_id``: the dispatcher may send a message again
after a crash, and the second send does nothing. A file appears complete or not at all
(written to a temporary file, then renamed), readable only by its owner: the messages
hold single-use links and enrolment codes.
"""

from __future__ import annotations

import email
import email.message
import email.policy
import json
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, NamedTuple

from cardvault.errors import NotFound
from cardvault.notify.message import EmailMessage, SmsMessage, check_message_id
from cardvault.notify.mime import build_mime
from cardvault.notify.ports import DeliveryFailed

if sys.platform != "win32":
    import fcntl

_TIMESTAMP = "%Y%m%dT%H%M%S%fZ"  # sortable, and without '-' so the name splits once
_SUFFIXES: dict[str, Literal["email", "sms"]] = {".eml": "email", ".sms.json": "sms"}
DEV_FROM_ADDRESS = "cardvault <no-reply@localhost>"


class OutboxMessageNotFound(NotFound):
    code = "outbox_message_not_found"


@dataclass(frozen=True, kw_only=True)
class OutboxEntry:
    """One message in the outbox, as the development portal lists it."""

    message_id: str
    kind: Literal["email", "sms"]
    created_at: datetime
    to: str
    #: the subject of an email, the text of an SMS
    summary: str
    path: Path


def _utcnow() -> datetime:
    return datetime.now(UTC)


class FileOutbox:
    """An :class:`EmailSender` and :class:`SmsSender` that writes files into ``directory``."""

    def __init__(
        self,
        directory: Path,
        *,
        from_address: str = DEV_FROM_ADDRESS,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.directory = directory
        self._from = from_address
        self._clock = clock
        self._thread_lock = threading.Lock()

    def send(self, message: EmailMessage | SmsMessage) -> None:
        now = self._clock().astimezone(UTC)
        if isinstance(message, EmailMessage):
            mime = build_mime(message, from_address=self._from, date=now)
            data, suffix = mime.as_bytes(policy=email.policy.SMTP), ".eml"
        else:
            data, suffix = _sms_json(message, now), ".sms.json"
        name = f"{now.strftime(_TIMESTAMP)}-{message.message_id}{suffix}"
        with self._locked():
            if message.message_id not in self._index():
                self._write_atomically(name, data)

    def list_messages(self) -> list[OutboxEntry]:
        """Every message, newest first."""
        if not self.directory.is_dir():
            return []
        entries = [self._entry(stored) for stored in self._index().values()]
        return sorted(entries, key=lambda entry: entry.created_at, reverse=True)

    def read(self, message_id: str) -> EmailMessage | SmsMessage:
        """The message as it was sent, to show in the development portal."""
        return _load(self._stored(message_id))

    def path_of(self, message_id: str) -> Path:
        """The file holding ``message_id`` (for a download link)."""
        return self._stored(message_id).path

    def _stored(self, message_id: str) -> _Stored:
        check_message_id(message_id)
        stored = self._index().get(message_id) if self.directory.is_dir() else None
        if stored is None:
            raise OutboxMessageNotFound("There is no such message in the outbox.")
        return stored

    def _index(self) -> dict[str, _Stored]:
        """message_id → file, from the names alone (temporary and foreign files are skipped)."""
        index: dict[str, _Stored] = {}
        for path in self.directory.iterdir():
            stored = _parse_name(path)
            if stored is not None:
                index[stored.message_id] = stored
        return index

    def _entry(self, stored: _Stored) -> OutboxEntry:
        message = _load(stored)
        summary = message.subject if isinstance(message, EmailMessage) else message.text
        return OutboxEntry(
            message_id=stored.message_id,
            kind=stored.kind,
            created_at=stored.created_at,
            to=message.to,
            summary=summary,
            path=stored.path,
        )

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer at a time: threads by a lock, processes by flock (POSIX)."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self._thread_lock:
            fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                if sys.platform != "win32":
                    fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)

    def _write_atomically(self, name: str, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, self.directory / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class _Stored(NamedTuple):
    path: Path
    message_id: str
    created_at: datetime
    kind: Literal["email", "sms"]


def _parse_name(path: Path) -> _Stored | None:
    for suffix, kind in _SUFFIXES.items():
        if path.name.endswith(suffix) and not path.name.startswith("."):
            stamp, _, message_id = path.name.removesuffix(suffix).partition("-")
            try:
                created_at = datetime.strptime(stamp, _TIMESTAMP).replace(tzinfo=UTC)
            except ValueError:
                return None
            return _Stored(path, message_id, created_at, kind)
    return None


def _load(stored: _Stored) -> EmailMessage | SmsMessage:
    if stored.kind == "email":
        return _email_from_file(stored.path, stored.message_id)
    record = json.loads(stored.path.read_text(encoding="utf-8"))
    return SmsMessage(message_id=stored.message_id, to=record["to"], text=record["text"])


def _sms_json(message: SmsMessage, now: datetime) -> bytes:
    record = {
        "id": message.message_id,
        "to": message.to,
        "text": message.text,
        "created_at": now.isoformat(),
    }
    return json.dumps(record, ensure_ascii=False, indent=2).encode("utf-8")


def _email_from_file(path: Path, message_id: str) -> EmailMessage:
    mime = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(mime, email.message.EmailMessage)
    text_part = mime.get_body(preferencelist=("plain",))
    html_part = mime.get_body(preferencelist=("html",))
    return EmailMessage(
        message_id=message_id,
        to=str(mime["To"]),
        subject=str(mime["Subject"]),
        text=_content(text_part) or "",
        html=_content(html_part),
    )


def _content(part: email.message.Message | None) -> str | None:
    if part is None:
        return None
    assert isinstance(part, email.message.EmailMessage)
    content = part.get_content()  # the file has SMTP's CRLF line ends; the caller wants "\n"
    return content.replace("\r\n", "\n") if isinstance(content, str) else None


@dataclass(kw_only=True)
class MemoryOutbox:
    """A fake sender for other layers' tests: keeps what was sent, fails on request.

    Put :class:`DeliveryFailed` errors into ``failures`` and the next sends raise them in
    order, which is how a dispatcher's retry logic is tested without mocks.
    """

    emails: list[EmailMessage] = field(default_factory=list)
    sms: list[SmsMessage] = field(default_factory=list)
    failures: list[DeliveryFailed] = field(default_factory=list)

    def send(self, message: EmailMessage | SmsMessage) -> None:
        if self.failures:
            raise self.failures.pop(0)
        if isinstance(message, EmailMessage):
            if all(m.message_id != message.message_id for m in self.emails):
                self.emails.append(message)
        elif all(m.message_id != message.message_id for m in self.sms):
            self.sms.append(message)
