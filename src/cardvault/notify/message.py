"""The messages the notify layer sends, validated once, where they are made.

A message is built by the service inside its transaction and sent by a dispatcher after
commit, possibly more than once (a retry after a crash). Its ``message_id`` is therefore
stable: it becomes the email's Message-ID and the SMS gateway's idempotency key, and it
names the file in the development outbox, so it is limited to characters that are safe
in all three places.

Addresses are checked for sanity, not for RFC 5322 completeness: an address that the
service cannot put into a header without quoting is refused rather than quoted. CR or LF
anywhere in a header value is refused (header injection), never stripped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cardvault.errors import InvalidInput

#: ASCII only, so that it is safe in a Message-ID, an HTTP header and a file name.
_MESSAGE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_DOMAIN_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
#: separators people type inside phone numbers; anything else is refused
_PHONE_SEPARATORS = str.maketrans("", "", " -.()/\u00a0")

#: an email subject stays on one line of a mail client; RFC 5322 caps a line at 998
MAX_SUBJECT_LENGTH = 200
#: four concatenated GSM-7 segments; gateways bill per segment, so keep texts short
MAX_SMS_LENGTH = 612
MAX_BODY_LENGTH = 100_000
#: the country code a national number (leading 0) belongs to; the original service is UK's
DEFAULT_COUNTRY_CODE = "44"


class InvalidMessage(InvalidInput):
    """A message field is empty, too long or would break out of its header."""

    code = "invalid_message"


class HeaderInjection(InvalidMessage):
    """A header value contains a line break: somebody tried to add headers of their own."""

    code = "header_injection"


class InvalidEmailAddress(InvalidInput):
    code = "invalid_email_address"


class InvalidPhoneNumber(InvalidInput):
    code = "invalid_phone_number"


def _refuse_line_breaks(field: str, value: str) -> None:
    if any(ch in value for ch in "\r\n\x00\x0b\x0c\x85\u2028\u2029"):
        raise HeaderInjection(f"The {field} must be a single line.", field=field)


def check_message_id(message_id: str) -> str:
    """Return ``message_id`` if it is 1-128 of ``A-Z a-z 0-9 . _ -``, not starting with a dot."""
    if not _MESSAGE_ID.fullmatch(message_id):
        raise InvalidMessage(
            "A message id is 1 to 128 letters, digits, '.', '_' or '-'.", field="message_id"
        )
    return message_id


def normalise_email_address(address: str) -> str:
    """Check ``local@domain`` for sanity and lower-case the domain (the local part is kept)."""
    _refuse_line_breaks("email address", address)
    address = address.strip()
    local, sep, domain = address.rpartition("@")
    labels = domain.split(".")
    if (
        not sep
        or len(address) > 254
        or len(local) > 64
        or not _LOCAL_PART.fullmatch(local)
        or len(labels) < 2
        or not all(_DOMAIN_LABEL.fullmatch(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise InvalidEmailAddress("That is not an email address we can send to.", field="to")
    return f"{local}@{domain.lower()}"


def normalise_phone_number(number: str, *, country_code: str = DEFAULT_COUNTRY_CODE) -> str:
    """Return the E.164 form (``+447700900123``) of an international or national number.

    ``00`` is read as the international prefix, and a single leading ``0`` as a national
    number of ``country_code`` ("07700 900123" → "+447700900123").
    """
    _refuse_line_breaks("phone number", number)
    # "+44 (0)7700 900123": the (0) is the national trunk prefix, dropped when dialling abroad
    digits = number.strip().replace("(0)", "").translate(_PHONE_SEPARATORS)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    elif digits.startswith("0"):
        digits = f"+{country_code}{digits[1:]}"
    if not digits.isascii() or not _E164.fullmatch(digits):
        raise InvalidPhoneNumber(
            "That is not a phone number we can send to.",
            remedy="Give the number with its country code, such as +44 7700 900123.",
            field="to",
        )
    return digits


def _check_body(field: str, value: str, limit: int) -> None:
    if not value.strip():
        raise InvalidMessage(f"The {field} is empty.", field=field)
    if len(value) > limit:
        raise InvalidMessage(f"The {field} is longer than {limit} characters.", field=field)


@dataclass(frozen=True, kw_only=True)
class EmailMessage:
    """An email with a plain-text part and, usually, an HTML alternative (RFC 2046 §5.1.4).

    ``to`` is normalised on construction (the domain lower-cased).
    """

    message_id: str
    to: str
    subject: str
    #: bodies hold single-use links and codes: kept out of repr so they never reach a log
    text: str = field(repr=False)
    html: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        check_message_id(self.message_id)
        object.__setattr__(self, "to", normalise_email_address(self.to))
        _refuse_line_breaks("subject", self.subject)
        _check_body("subject", self.subject, MAX_SUBJECT_LENGTH)
        _check_body("text", self.text, MAX_BODY_LENGTH)
        if self.html is not None:
            _check_body("html", self.html, MAX_BODY_LENGTH)


@dataclass(frozen=True, kw_only=True)
class SmsMessage:
    """A text message; ``to`` is normalised to E.164 on construction."""

    message_id: str
    to: str
    text: str = field(repr=False)

    def __post_init__(self) -> None:
        check_message_id(self.message_id)
        object.__setattr__(self, "to", normalise_phone_number(self.to))
        _check_body("text", self.text, MAX_SMS_LENGTH)
