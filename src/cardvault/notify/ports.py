"""The ports the services send through, and the one error every sender raises.

Senders are called by the outbox dispatcher after the database commit, and may be called
again for the same message after a crash or a timeout. They therefore take a message with a
stable ``message_id`` and pass it on (Message-ID header, ``Idempotency-Key``) so that the
receiving side can drop a duplicate; a sender never decides on its own to skip a message.
"""

from __future__ import annotations

from typing import Protocol

from cardvault.errors import InvalidInput, Unavailable, error
from cardvault.notify.message import EmailMessage, SmsMessage


@error
class DeliveryFailed(Unavailable):
    """The message was not handed over.

    ``permanent`` tells the dispatcher whether a retry can help: it is true only when the
    other side refused *this message* (unknown recipient, rejected content). Outages,
    timeouts, and refusals of our own configuration (credentials, TLS) are temporary, so
    that mail queued during a misconfiguration goes out once an operator fixes it.
    """

    code = "delivery_failed"

    permanent: bool
    #: the SMS gateway's HTTP status, or the SMTP server's reply code, when one answered
    gateway_status: int | None = None
    smtp_code: int | None = None


class SenderMisconfigured(InvalidInput):
    """A sender was built with settings that would be unsafe or cannot work."""

    code = "notify_misconfigured"


class EmailSender(Protocol):
    def send(self, message: EmailMessage) -> None:
        """Hand ``message`` over for delivery, or raise :class:`DeliveryFailed`."""
        ...


class SmsSender(Protocol):
    def send(self, message: SmsMessage) -> None:
        """Hand ``message`` over for delivery, or raise :class:`DeliveryFailed`."""
        ...
