"""Command and response APDUs (ISO/IEC 7816-4 §5.1, §5.3) and the card's status words.

The parser accepts all four cases in short and extended form and is lenient about ``Le`` the
way real cards are: yubico-piv-tool sends GET DATA and GENERAL AUTHENTICATE without ``Le`` and
a VERIFY status query with ``Le=00``; handlers look at the data, not at the case. Anything it
cannot parse becomes a :class:`CardError` carrying ``6700`` -- the one exception of the card
layer, which the applet turns into the two status bytes of its answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar

from cardvault.errors import CardvaultError
from cardvault.json_types import JsonObject

__all__ = [
    "CardError",
    "CommandApdu",
    "IsoIns",
    "Sw",
    "parse_command",
    "parse_short",
    "response",
    "status_word",
]

SHORT_MAX = 256
EXTENDED_MAX = 65536


class IsoIns(IntEnum):
    """The inter-industry instructions the wire itself needs (ISO 7816-4 §7): the connector
    answers them from its cache; the PIV applet's full table is ``card.piv.Ins``."""

    GET_RESPONSE = 0xC0  # §7.6.1
    GET_DATA = 0xCB  # §7.4.2, odd INS: the data field is a tag list


class Sw(IntEnum):
    """Status words (ISO 7816-4 §5.6, SP 800-73-4 Part 2 §3 tables)."""

    SUCCESS = 0x9000
    BYTES_REMAINING = 0x6100  # + number of bytes (00 = 256 or more)
    VERIFY_FAILED = 0x63C0  # + retries left
    MEMORY_FAILURE = 0x6581
    WRONG_LENGTH = 0x6700
    SECURE_MESSAGING_UNSUPPORTED = 0x6882
    LAST_COMMAND_EXPECTED = 0x6883
    SECURITY_STATUS_NOT_SATISFIED = 0x6982
    AUTH_METHOD_BLOCKED = 0x6983
    CONDITIONS_NOT_SATISFIED = 0x6985
    INCORRECT_DATA = 0x6A80
    FUNCTION_NOT_SUPPORTED = 0x6A81
    FILE_NOT_FOUND = 0x6A82
    NOT_ENOUGH_MEMORY = 0x6A84
    INCORRECT_P1P2 = 0x6A86
    REFERENCE_NOT_FOUND = 0x6A88
    INS_NOT_SUPPORTED = 0x6D00
    CLA_NOT_SUPPORTED = 0x6E00
    NO_PRECISE_DIAGNOSIS = 0x6F00

    @classmethod
    def remaining(cls, count: int) -> int:
        """``61 xx``: more data waits for GET RESPONSE (xx = 00 means 256 or more)."""
        return cls.BYTES_REMAINING | (count if count < SHORT_MAX else 0)

    @classmethod
    def retries(cls, left: int) -> int:
        """``63 Cx``: verification failed, ``x`` tries left."""
        return cls.VERIFY_FAILED | min(max(left, 0), 0x0F)

    @classmethod
    def more_waiting(cls, sw: int) -> bool:
        """``61 xx``: the answer goes on with GET RESPONSE."""
        return sw & 0xFF00 == cls.BYTES_REMAINING

    def wire(self) -> bytes:
        """SW1 SW2 as they travel: a response APDU with no data."""
        return self.to_bytes(2, "big")


class CardError(CardvaultError):
    """The card refuses a command; ``sw`` is what it answers (never 9000 or 61xx)."""

    code: ClassVar[str] = "card_status"

    def __init__(self, sw: int, message: str | None = None) -> None:
        super().__init__(message or f"card status {sw:04X}")
        self.sw = sw

    def extensions(self) -> JsonObject:
        """The status word the card answered."""
        return {"sw": self.sw}


@dataclass(frozen=True, kw_only=True)
class CommandApdu:
    """A command APDU (ISO 7816-4 §5.1). ``ne`` is the expected length, None when Le is absent."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    ne: int | None = None
    extended: bool = False

    @property
    def chained(self) -> bool:
        """CLA bit b5 (0x10): more commands of this chain follow (ISO 7816-4 §5.4.2)."""
        return bool(self.cla & 0x10)

    @property
    def header(self) -> tuple[int, int, int, int]:
        """CLA INS P1 P2."""
        return (self.cla, self.ins, self.p1, self.p2)

    @property
    def max_response(self) -> int:
        """How much the client takes in one answer; a missing Le is read as "as much as fits"."""
        if self.ne is not None:
            return self.ne
        return EXTENDED_MAX if self.extended else SHORT_MAX

    def to_bytes(self) -> bytes:
        """Short form where it fits, extended otherwise (used by tests and tools)."""
        header = bytes((self.cla, self.ins, self.p1, self.p2))
        extended = self.extended or len(self.data) > 255 or (self.ne or 0) > SHORT_MAX
        if not extended:
            lc = bytes((len(self.data),)) + self.data if self.data else b""
            le = b"" if self.ne is None else bytes((self.ne % SHORT_MAX,))
            return header + lc + le
        lc = b"\x00" + len(self.data).to_bytes(2, "big") + self.data if self.data else b""
        le = b"" if self.ne is None else (self.ne % EXTENDED_MAX).to_bytes(2, "big")
        return header + lc + (b"\x00" + le if le and not lc else le)


def parse_command(raw: bytes) -> CommandApdu:
    """Parse a command APDU of any case (ISO 7816-3 §12.1.3); a bad length raises 6700."""
    if len(raw) < 4:
        raise CardError(Sw.WRONG_LENGTH, "an APDU has at least four header bytes")
    cla, ins, p1, p2 = raw[:4]
    body = raw[4:]
    extended = len(body) > 1 and body[0] == 0
    data, ne = _extended_body(body[1:]) if extended else _short_body(body)
    return CommandApdu(cla=cla, ins=ins, p1=p1, p2=p2, data=data, ne=ne, extended=extended)


def parse_short(raw: bytes) -> CommandApdu | None:
    """A well-formed short APDU, or None (extended or malformed): what a relay that only
    cuts short answers into ``61xx`` pieces may look at; the card judges the rest."""
    try:
        command = parse_command(raw)
    except CardError:
        return None
    return None if command.extended else command


def _short_body(body: bytes) -> tuple[bytes, int | None]:
    if not body:
        return b"", None
    if len(body) == 1:
        return b"", body[0] or SHORT_MAX
    lc = body[0]
    if len(body) == 1 + lc:
        return body[1:], None
    if len(body) == 2 + lc:
        return body[1:-1], body[-1] or SHORT_MAX
    raise CardError(Sw.WRONG_LENGTH, "Lc does not match the data")


def _extended_body(body: bytes) -> tuple[bytes, int | None]:
    if len(body) < 2:
        raise CardError(Sw.WRONG_LENGTH, "an extended length needs two bytes")
    first = int.from_bytes(body[:2], "big")
    if len(body) == 2:
        return b"", first or EXTENDED_MAX
    if first == 0:
        raise CardError(Sw.WRONG_LENGTH, "an extended Lc of zero")
    if len(body) == 2 + first:
        return body[2:], None
    if len(body) == 4 + first:
        return body[2:-2], int.from_bytes(body[-2:], "big") or EXTENDED_MAX
    raise CardError(Sw.WRONG_LENGTH, "extended Lc does not match the data")


def response(data: bytes = b"", sw: int = Sw.SUCCESS) -> bytes:
    """A response APDU: data followed by SW1 SW2."""
    return data + sw.to_bytes(2, "big")


def status_word(answer: bytes) -> int:
    """SW1 SW2 of a response APDU (its last two bytes)."""
    if len(answer) < 2:
        raise CardError(Sw.WRONG_LENGTH, "a response APDU ends with two status bytes")
    return int.from_bytes(answer[-2:], "big")
