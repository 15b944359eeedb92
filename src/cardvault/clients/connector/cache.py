"""The connector's copy of the card's public objects, so a signature is not ~40 round trips.

OpenSC reads Discovery, the CCC, the CHUID and every certificate object each time a program
opens the card -- twice, first with ``Le=08`` to learn the length. Those objects are public
and cannot change while a holder's session lasts (writing them needs the management key,
which is refused outside issuance), so the connector answers GET DATA for them itself,
including the ``61xx`` / GET RESPONSE chaining a real card would do. Everything else goes to
the service. This module knows only enough of ISO 7816-4 to recognise those two commands.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["PublicObjectCache"]

_GET_DATA = (0x00, 0xCB, 0x3F, 0xFF)
_GET_RESPONSE = (0x00, 0xC0, 0x00, 0x00)
_SHORT_MAX = 256
_OK = b"\x90\x00"
_NOT_FOUND = b"\x6a\x82"
_NOTHING_WAITING = b"\x69\x85"
_TAG_LIST = 0x5C


class PublicObjectCache:
    """Answers GET DATA of the objects it holds; ``None`` means "ask the card"."""

    def __init__(self, answers: Mapping[int, bytes | None]) -> None:
        self._answers = dict(answers)
        self._pending = b""
        self._answered_last = False
        self.hits = 0

    def answer(self, apdu: bytes) -> bytes | None:
        """The local answer to ``apdu``, or None when the card must answer it."""
        header = tuple(apdu[:4])
        if header == _GET_RESPONSE and self._answered_last:
            return self._continue(_short_le(apdu[4:]))
        self._answered_last = False
        self._pending = b""
        if header != _GET_DATA:
            return None
        request = _get_data(apdu[4:])
        if request is None or request[0] not in self._answers:
            return None
        tag, limit = request
        self.hits += 1
        self._answered_last = True
        data = self._answers[tag]
        return _NOT_FOUND if data is None else self._deliver(data, limit)

    def reset(self) -> None:
        """After power-up or reset nothing waits for GET RESPONSE."""
        self._pending = b""
        self._answered_last = False

    def _continue(self, limit: int) -> bytes:
        if not self._pending:
            return _NOTHING_WAITING
        return self._deliver(self._pending, limit)

    def _deliver(self, data: bytes, limit: int) -> bytes:
        head, rest = data[:limit], data[limit:]
        self._pending = rest
        if not rest:
            return head + _OK
        return head + bytes((0x61, len(rest) if len(rest) < _SHORT_MAX else 0))


def _get_data(body: bytes) -> tuple[int, int] | None:
    """(tag, Ne) of a short GET DATA ``Lc 5C len tag [Le]``; None for anything else."""
    if not body or body[0] == 0:  # no data, or extended length: leave it to the card
        return None
    lc = body[0]
    data, rest = body[1 : 1 + lc], body[1 + lc :]
    if len(data) != lc or len(rest) > 1 or len(data) < 3:
        return None
    if data[0] != _TAG_LIST or data[1] != len(data) - 2 or not 1 <= data[1] <= 3:
        return None
    return int.from_bytes(data[2:], "big"), _short_le(rest)


def _short_le(rest: bytes) -> int:
    """Ne of a short Le byte; a missing Le means "as much as fits", as the applet reads it."""
    if not rest:
        return _SHORT_MAX
    return rest[0] or _SHORT_MAX
