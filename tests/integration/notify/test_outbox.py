"""FileOutbox: the development mail and SMS outbox, on a real file system."""

from __future__ import annotations

import email
import email.policy
import json
import stat
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path

import pytest

from cardvault.notify.message import EmailMessage, SmsMessage
from cardvault.notify.outbox import FileOutbox, MemoryOutbox, OutboxMessageNotFound
from cardvault.notify.ports import DeliveryFailed, EmailSender, SmsSender

START = datetime(2024, 1, 31, 14, 5, tzinfo=UTC)


def _ticking_clock() -> Callable[[], datetime]:
    ticks = count()
    return lambda: START + timedelta(seconds=next(ticks))


def _email(message_id: str = "mail-1", subject: str = "Your card has been locked") -> EmailMessage:
    return EmailMessage(
        message_id=message_id,
        to="ann@example.org",
        subject=subject,
        text="Unlock: https://portal.example/unlock?t=abc\n",
        html='<a href="https://portal.example/unlock?t=abc">Unlock</a>\n',  # MIME ends lines
    )


def _sms(message_id: str = "sms-1") -> SmsMessage:
    return SmsMessage(message_id=message_id, to="07700 900123", text="123456 is your code.")


@pytest.fixture
def outbox(tmp_path: Path) -> FileOutbox:
    return FileOutbox(tmp_path / "outbox", clock=_ticking_clock())


def test_outbox_is_an_email_sender_and_an_sms_sender(outbox: FileOutbox) -> None:
    email_sender: EmailSender = outbox
    sms_sender: SmsSender = outbox
    assert email_sender is sms_sender


def test_send_email_writes_an_eml_named_by_time_and_id(outbox: FileOutbox) -> None:
    outbox.send(_email())

    [path] = [p for p in outbox.directory.iterdir() if not p.name.startswith(".")]
    assert path.name == "20240131T140500000000Z-mail-1.eml"
    mime = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert mime["Message-ID"] == "<mail-1@localhost>"
    assert mime["To"] == "ann@example.org"
    assert [p.get_content_type() for p in mime.iter_parts()] == ["text/plain", "text/html"]


def test_send_writes_files_only_the_owner_can_read(outbox: FileOutbox) -> None:
    outbox.send(_email())
    outbox.send(_sms())

    assert stat.S_IMODE(outbox.directory.stat().st_mode) == 0o700
    for entry in outbox.list_messages():
        assert stat.S_IMODE(entry.path.stat().st_mode) == 0o600


def test_send_same_message_id_twice_writes_once(outbox: FileOutbox) -> None:
    outbox.send(_email(subject="First"))
    outbox.send(_email(subject="Second"))

    [entry] = outbox.list_messages()
    assert entry.summary == "First"


def test_concurrent_sends_of_one_message_write_one_file(tmp_path: Path) -> None:
    directory = tmp_path / "outbox"

    def send(_: int) -> None:  # a separate outbox per thread: the file lock must hold alone
        FileOutbox(directory).send(_email())

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(send, range(16)))

    assert len(FileOutbox(directory).list_messages()) == 1


def test_send_leaves_no_temporary_files(outbox: FileOutbox) -> None:
    outbox.send(_email())
    outbox.send(_sms())

    names = sorted(p.name for p in outbox.directory.iterdir())
    assert [n for n in names if n.startswith(".")] == [".lock"]


def test_list_ignores_half_written_and_foreign_files(outbox: FileOutbox) -> None:
    outbox.send(_email())
    (outbox.directory / ".tmp-abc123").write_bytes(b"From: half a mess")  # a crash mid-write
    (outbox.directory / "README.txt").write_text("not a message")
    (outbox.directory / "not-a-time-x.eml").write_text("not ours")

    assert [entry.message_id for entry in outbox.list_messages()] == ["mail-1"]


def test_send_sms_writes_json_with_normalised_number(outbox: FileOutbox) -> None:
    outbox.send(_sms())

    [entry] = outbox.list_messages()
    assert entry.path.name == "20240131T140500000000Z-sms-1.sms.json"
    record = json.loads(entry.path.read_text())
    assert record == {
        "id": "sms-1",
        "to": "+447700900123",
        "text": "123456 is your code.",
        "created_at": "2024-01-31T14:05:00+00:00",
    }


def test_list_messages_newest_first_with_summaries(outbox: FileOutbox) -> None:
    outbox.send(_email("mail-1", subject="Older"))
    outbox.send(_sms("sms-1"))
    outbox.send(_email("mail-2", subject="Newer"))

    entries = outbox.list_messages()
    assert [(e.message_id, e.kind, e.summary) for e in entries] == [
        ("mail-2", "email", "Newer"),
        ("sms-1", "sms", "123456 is your code."),
        ("mail-1", "email", "Older"),
    ]
    assert entries[0].created_at == START + timedelta(seconds=2)
    assert entries[1].to == "+447700900123"


def test_read_returns_the_message_as_sent(outbox: FileOutbox) -> None:
    sent_email, sent_sms = _email(), _sms()
    outbox.send(sent_email)
    outbox.send(sent_sms)

    assert outbox.read("mail-1") == sent_email
    assert outbox.read("sms-1") == sent_sms
    assert outbox.path_of("mail-1").suffix == ".eml"


def test_read_unknown_message_is_not_found(outbox: FileOutbox) -> None:
    with pytest.raises(OutboxMessageNotFound):
        outbox.read("nope")
    outbox.send(_sms())
    with pytest.raises(OutboxMessageNotFound):
        outbox.read("nope")


def test_list_of_a_missing_directory_is_empty(tmp_path: Path) -> None:
    assert FileOutbox(tmp_path / "never-created").list_messages() == []


def test_memory_outbox_keeps_each_message_once_and_fails_on_request() -> None:
    outbox = MemoryOutbox(failures=[DeliveryFailed("down", permanent=False)])

    with pytest.raises(DeliveryFailed):
        outbox.send(_email())
    outbox.send(_email())
    outbox.send(_email())
    outbox.send(_sms())

    assert [m.message_id for m in outbox.emails] == ["mail-1"]
    assert [m.message_id for m in outbox.sms] == ["sms-1"]
