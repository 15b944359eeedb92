"""The agent's HR card reader: the UID of a contactless card tapped on a PC/SC reader.

PC/SC part 3 defines the pseudo-APDU ``FF CA 00 00 00`` (GET DATA, UID): contactless
readers answer it themselves with the card's UID and ``90 00``. The card only needs to
be tapped: the UID is read the moment it arrives, and it may be taken away again.

Which reader: the one named with ``reader`` (a case-insensitive part of its name), or
any reader on which a card is *placed* while the agent waits (a card already lying on
some reader at the start is left alone: it may be the holder's own smartcard in a
contact reader).

The UID is an identifier, not a secret (docs/user/hr-cards.md): this module never
treats it as one.

pyscard is an optional dependency (``pip install 'cardvault[pcsc]'``); it is imported
only when a reader is used, so the rest of the agent works without it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from cardvault.card.apdu import Sw, status_word
from cardvault.errors import (
    AuthenticationFailed,
    InvalidInput,
    NotFound,
    Unavailable,
    error,
)

GET_UID = [0xFF, 0xCA, 0x00, 0x00, 0x00]
UID_LENGTHS = (4, 7, 10)
SLICE_MS = 250  # wait in short slices so that Ctrl-C and the deadline are honoured


@error
class PcscUnavailable(Unavailable):
    code = "pcsc_unavailable"
    pcsc_error: str | None = None


class NoReader(NotFound):
    code = "hr_reader_missing"


@error
class ReaderRemoved(Unavailable):
    code = "hr_reader_removed"
    pcsc_error: str | None = None


@error
class CardTakenAway(AuthenticationFailed):
    code = "hr_card_removed"
    pcsc_error: str | None = None


class NotAnHrCard(InvalidInput):
    code = "hr_card_unreadable"


class TapTimeout(AuthenticationFailed):
    code = "hr_card_timeout"


@dataclass(frozen=True, kw_only=True)
class TappedCard:
    uid: str
    reader: str


def read_uid(
    *,
    reader: str | None = None,
    timeout: float = 60.0,
    on_wait: Callable[[Sequence[str]], None] | None = None,
) -> TappedCard:
    """Wait for a card to be tapped and read its UID (upper-case hex)."""
    scard = _pyscard()
    with _context(scard) as ctx:
        names = _readers(scard, ctx, reader)
        if on_wait is not None:
            on_wait(names)
        return _wait_and_read(scard, ctx, names, named=reader is not None, timeout=timeout)


def _pyscard() -> ModuleType:
    try:
        from smartcard import scard
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise PcscUnavailable(
            "This agent was installed without card reader support.",
            remedy="Install it with: pip install 'cardvault[pcsc]'",
        ) from exc
    module: ModuleType = scard
    return module


@contextmanager
def _context(scard: Any) -> Iterator[Any]:
    rv, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if rv != scard.SCARD_S_SUCCESS:
        raise PcscUnavailable(
            "The smart card service is not running on this PC.",
            remedy="Start it (Linux: pcscd; Windows: the Smart Card service) and try again.",
            pcsc_error=_describe(scard, rv),
        )
    try:
        yield ctx
    finally:
        scard.SCardReleaseContext(ctx)


def _readers(scard: Any, ctx: Any, wanted: str | None) -> list[str]:
    rv, names = scard.SCardListReaders(ctx, [])
    if rv == scard.SCARD_E_NO_READERS_AVAILABLE or (rv == scard.SCARD_S_SUCCESS and not names):
        raise NoReader(
            "No card reader was found.", remedy="Connect the HR card reader and try again."
        )
    if rv != scard.SCARD_S_SUCCESS:
        raise _service_error(scard, rv)
    if wanted is None:
        return list(names)
    chosen = [n for n in names if wanted.lower() in n.lower()]
    if not chosen:
        raise NoReader(
            f"There is no card reader called {wanted!r}.",
            remedy=f"Connected readers: {', '.join(names)}.",
        )
    if len(chosen) > 1:
        raise InvalidInput(
            f"Several card readers match {wanted!r}: {', '.join(chosen)}.",
            remedy="Give more of the reader's name.",
        )
    return chosen


def _wait_and_read(
    scard: Any, ctx: Any, names: list[str], *, named: bool, timeout: float
) -> TappedCard:
    deadline = time.monotonic() + timeout
    states = [(n, scard.SCARD_STATE_UNAWARE) for n in names]
    states, present = _poll(scard, ctx, states, 0)  # UNAWARE: every card there "arrives"
    if named and present:  # the holder chose the reader: a card lying on it counts
        return _read(scard, ctx, present[0])
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TapTimeout(
                "No card was tapped on the reader in time.",
                remedy="Tap your HR card on the reader when asked.",
            )
        states, arrived = _poll(scard, ctx, states, min(SLICE_MS, int(left * 1000) + 1))
        if arrived:
            return _read(scard, ctx, arrived[0])


def _poll(
    scard: Any, ctx: Any, states: list[tuple[str, int]], wait_ms: int
) -> tuple[list[tuple[str, int]], list[str]]:
    """One wait for a change; returns the new states and the readers a card arrived on."""
    rv, new = scard.SCardGetStatusChange(ctx, wait_ms, states)
    if rv == scard.SCARD_E_TIMEOUT:
        return states, []
    if rv != scard.SCARD_S_SUCCESS:
        raise _lost_while_waiting(scard, rv, [name for name, _ in states])
    before = dict(states)
    arrived, updated = [], []
    for name, event, _atr in new:
        if event & (scard.SCARD_STATE_UNKNOWN | scard.SCARD_STATE_IGNORE):
            raise _reader_gone(name)
        was_present = before[name] & scard.SCARD_STATE_PRESENT
        if event & scard.SCARD_STATE_PRESENT and not was_present:
            arrived.append(name)
        updated.append((name, event & ~scard.SCARD_STATE_CHANGED))
    return updated, arrived


def _read(scard: Any, ctx: Any, reader: str) -> TappedCard:
    rv, card, protocol = scard.SCardConnect(
        ctx, reader, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1
    )
    if rv != scard.SCARD_S_SUCCESS:
        raise _card_error(scard, rv, reader)
    try:
        rv, response = scard.SCardTransmit(card, protocol, GET_UID)
        if rv != scard.SCARD_S_SUCCESS:
            raise _card_error(scard, rv, reader)
    finally:
        scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)
    return TappedCard(uid=_uid(response, reader), reader=reader)


def _uid(response: Sequence[int], reader: str) -> str:
    if len(response) < 2:  # no status word at all: the card left the field mid-command
        raise CardTakenAway(
            "The card was taken away before it could be read.",
            remedy="Tap it again and hold it still for a moment.",
        )
    data, sw = bytes(response[:-2]), status_word(bytes(response))
    if sw != Sw.SUCCESS or len(data) not in UID_LENGTHS:
        raise NotAnHrCard(
            f"The card on {reader} did not give a card number (status {sw:04X}).",
            remedy="Use your HR card on a contactless reader.",
        )
    return data.hex().upper()


def _card_error(scard: Any, rv: int, reader: str) -> Exception:
    if rv in (scard.SCARD_E_READER_UNAVAILABLE, scard.SCARD_E_UNKNOWN_READER):
        return _reader_gone(reader)
    if _service_gone(scard, rv):
        return _service_error(scard, rv)
    return CardTakenAway(
        "The card was taken away before it could be read.",
        remedy="Tap it again and hold it still for a moment.",
        pcsc_error=_describe(scard, rv),
    )


def _lost_while_waiting(scard: Any, rv: int, names: list[str]) -> ReaderRemoved:
    """Whatever goes wrong once the wait has begun, the reader is no longer there for us:
    unplugged, or the smart card service behind it stopped or crashed."""
    if rv in (scard.SCARD_E_UNKNOWN_READER, scard.SCARD_E_READER_UNAVAILABLE) and len(names) == 1:
        return _reader_gone(names[0])
    return ReaderRemoved(
        "The card reader is no longer available (it was disconnected, or the smart card "
        "service stopped).",
        remedy="Connect it again, or start the smart card service (Linux: pcscd), and "
        "start the sign-in again.",
        pcsc_error=_describe(scard, rv),
    )


def _reader_gone(reader: str) -> ReaderRemoved:
    return ReaderRemoved(
        f"The card reader {reader} was disconnected.",
        remedy="Connect it again and start the sign-in again.",
    )


def _service_gone(scard: Any, rv: int) -> bool:
    """pcscd went away (stopped, crashed): every reader with it."""
    return rv in (scard.SCARD_E_NO_SERVICE, scard.SCARD_E_SERVICE_STOPPED, scard.SCARD_F_COMM_ERROR)


def _service_error(scard: Any, rv: int) -> Exception:
    if _service_gone(scard, rv):
        return ReaderRemoved(
            "The smart card service stopped, so the card reader is no longer available.",
            remedy="Start it again (Linux: pcscd) and start the sign-in again.",
        )
    return PcscUnavailable(
        f"The card reader could not be used ({_describe(scard, rv)}).",
        pcsc_error=_describe(scard, rv),
    )


def _describe(scard: Any, rv: int) -> str:
    try:
        return str(scard.SCardGetErrorMessage(rv)).strip()
    except Exception:
        return f"0x{rv & 0xFFFFFFFF:08X}"
