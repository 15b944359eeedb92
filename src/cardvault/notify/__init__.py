"""Email and SMS: messages, the ports services send through, and their senders.

This layer does I/O but knows nothing of the database. The services write a notification
row in the same transaction as the state change; a dispatcher sends it after commit with
one of these senders and marks it sent. Senders take a stable ``message_id`` and pass it on
(Message-ID header, ``Idempotency-Key``) so that a retry is recognisably the same message,
and raise :class:`DeliveryFailed` with ``permanent`` telling the dispatcher whether to retry.

- :mod:`.message` — :class:`EmailMessage`, :class:`SmsMessage`, address validation
- :mod:`.ports` — the :class:`EmailSender` / :class:`SmsSender` protocols, :class:`DeliveryFailed`
- :mod:`.smtp` — :class:`SmtpSender` (production email)
- :mod:`.sms_webhook`, :mod:`.sms_govuk_notify` — production SMS
- :mod:`.outbox` — :class:`FileOutbox` (development), :class:`MemoryOutbox` (tests)
- :mod:`.templates` — :func:`render_email`, :func:`render_sms`
"""

from cardvault.notify.message import EmailMessage, SmsMessage
from cardvault.notify.ports import DeliveryFailed, EmailSender, SenderMisconfigured, SmsSender

__all__ = [
    "DeliveryFailed",
    "EmailMessage",
    "EmailSender",
    "SenderMisconfigured",
    "SmsMessage",
    "SmsSender",
]
