"""Sending email through an SMTP server (RFC 5321), over STARTTLS (RFC 3207) or implicit TLS.

Each :meth:`SmtpSender.send` opens its own connection: the dispatcher sends a handful of
messages a minute, and a fresh connection never carries a half-broken session into the
next message. TLS is never downgraded: with ``security="starttls"`` a server that does not
offer STARTTLS is a failure, not a reason to send in the clear.

SMTP cannot promise exactly-once delivery (the connection can drop after the server took
the message but before it said so); the stable Message-ID lets the receiving side, and
people, recognise the duplicate that a retry may then cause.
"""

from __future__ import annotations

import email.utils
import smtplib
import ssl
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

from cardvault.notify.message import EmailMessage
from cardvault.notify.mime import build_mime, check_from_address
from cardvault.notify.ports import DeliveryFailed, SenderMisconfigured

SmtpSecurity = Literal["none", "starttls", "tls"]
_SECURITY_VALUES = frozenset({"none", "starttls", "tls"})


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SmtpSender:
    """An :class:`~cardvault.notify.ports.EmailSender` that talks to one SMTP server."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        security: SmtpSecurity,
        from_address: str,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        if security not in _SECURITY_VALUES:
            raise SenderMisconfigured("SMTP security must be 'none', 'starttls' or 'tls'.")
        if (username is None) != (password is None):
            raise SenderMisconfigured("Set both the SMTP user name and password, or neither.")
        if username is not None and security == "none":
            raise SenderMisconfigured(
                "Refusing to send SMTP credentials over an unencrypted connection.",
                remedy="Use security 'starttls' or 'tls'.",
            )
        check_from_address(from_address)
        self._host, self._port, self._security = host, port, security
        self._from = from_address
        self._credentials = None if username is None else (username, password or "")
        self._timeout = timeout
        self._ssl_context = ssl_context or ssl.create_default_context()
        self._clock = clock

    def send(self, message: EmailMessage) -> None:
        mime = build_mime(message, from_address=self._from, date=self._clock())
        envelope_from = email.utils.parseaddr(self._from)[1]
        try:
            smtp = self._connect()
            try:
                self._secure_and_log_in(smtp)
                smtp.send_message(mime, from_addr=envelope_from, to_addrs=[message.to])
            finally:
                _quit_quietly(smtp)
        except (OSError, smtplib.SMTPException) as exc:
            raise _delivery_failed(exc) from exc

    def _connect(self) -> smtplib.SMTP:
        if self._security == "tls":
            return smtplib.SMTP_SSL(
                self._host, self._port, timeout=self._timeout, context=self._ssl_context
            )
        return smtplib.SMTP(self._host, self._port, timeout=self._timeout)

    def _secure_and_log_in(self, smtp: smtplib.SMTP) -> None:
        smtp.ehlo()
        if self._security == "starttls":
            smtp.starttls(context=self._ssl_context)
            smtp.ehlo()
        if self._credentials is not None:
            smtp.login(*self._credentials)


def _quit_quietly(smtp: smtplib.SMTP) -> None:
    """Say goodbye; a failure here must not turn an accepted message into a retry."""
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        smtp.close()


def _is_permanent(code: int) -> bool:
    return 500 <= code < 600


def _delivery_failed(exc: OSError | smtplib.SMTPException) -> DeliveryFailed:
    """Map an smtplib/socket error to temporary or permanent (see :class:`DeliveryFailed`)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        permanent = bool(codes) and all(_is_permanent(code) for code in codes)
        return DeliveryFailed(
            "The mail server refused the recipient.",
            permanent=permanent,
            smtp_code=codes[0] if codes else None,
        )
    if isinstance(exc, smtplib.SMTPDataError):
        return DeliveryFailed(
            "The mail server refused the message.",
            permanent=_is_permanent(exc.smtp_code),
            smtp_code=exc.smtp_code,
        )
    return DeliveryFailed(_temporary_reason(exc), permanent=False, remedy=_remedy(exc))


def _temporary_reason(exc: OSError | smtplib.SMTPException) -> str:
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return "The mail server did not accept our credentials."
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return "The mail server does not offer what the settings require (STARTTLS or AUTH)."
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return "The mail server refused our sender address."
    if isinstance(exc, ssl.SSLError):
        return "The TLS connection to the mail server failed."
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"The mail server answered {exc.smtp_code}."
    if isinstance(exc, TimeoutError):
        return "The mail server did not answer in time."
    return "Could not reach the mail server."


def _remedy(exc: OSError | smtplib.SMTPException) -> str:
    if isinstance(exc, smtplib.SMTPAuthenticationError | smtplib.SMTPSenderRefused):
        return "Check the SMTP user name, password and sender address settings."
    if isinstance(exc, smtplib.SMTPNotSupportedError | ssl.SSLError):
        return "Check the SMTP security setting and the server's certificate."
    return "The message stays queued and is retried."
