"""Turning an :class:`EmailMessage` into the MIME document that SMTP and the outbox carry.

One function, shared by the SMTP sender and the file outbox, so that what a developer
opens from the outbox is byte for byte the kind of message production sends.
"""

from __future__ import annotations

import email.message
import email.policy
import email.utils
from datetime import datetime

from cardvault.notify.message import EmailMessage
from cardvault.notify.ports import SenderMisconfigured


def check_from_address(from_address: str) -> str:
    """Return the domain of a ``Name <addr@domain>`` sender, refusing what cannot be a header."""
    if any(ch in from_address for ch in "\r\n"):
        raise SenderMisconfigured("The sender address must be a single line.")
    _, addr = email.utils.parseaddr(from_address)
    local, sep, domain = addr.rpartition("@")
    if not (local and sep and domain):
        raise SenderMisconfigured(
            "The sender address is not an email address.",
            remedy="Set it like 'cardvault <no-reply@example.org>'.",
        )
    return domain.lower()


def message_id_header(message: EmailMessage, from_address: str) -> str:
    """The RFC 5322 Message-ID for ``message``: stable, so a resend is recognisably the same."""
    return f"<{message.message_id}@{check_from_address(from_address)}>"


def build_mime(
    message: EmailMessage, *, from_address: str, date: datetime
) -> email.message.EmailMessage:
    """A multipart/alternative email (text first, HTML last: the part clients prefer)."""
    mime = email.message.EmailMessage(policy=email.policy.SMTP)
    mime["Message-ID"] = message_id_header(message, from_address)
    mime["Date"] = email.utils.format_datetime(date)
    mime["From"] = from_address
    mime["To"] = message.to
    mime["Subject"] = message.subject
    # RFC 3834: machine-generated, so out-of-office replies and auto-forwarders stay quiet
    mime["Auto-Submitted"] = "auto-generated"
    mime["X-Auto-Response-Suppress"] = "All"
    mime.set_content(message.text)
    if message.html is not None:
        mime.add_alternative(message.html, subtype="html")
    return mime
