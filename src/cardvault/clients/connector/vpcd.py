"""The card side of vsmartcard's vpcd protocol: a virtual card plugged into pcscd's reader.

pcscd's vpcd driver listens on TCP (port 35963 for reader "Virtual PCD 00 00"); the card
connects to it. Both directions send frames of ``uint16 big-endian length || payload``. A
one-byte payload from vpcd is a control byte (power off / on / reset / get ATR -- only the
last is answered, with the ATR); anything longer is a command APDU, answered by exactly one
frame with the response APDU. Closing the connection removes the card from the reader.

This module knows nothing of PIV or of the service: it relays APDUs to a callable. vpcd 3.3
writes length and payload in two ``send()`` calls without TCP_NODELAY, so the card sets
TCP_NODELAY and re-arms TCP_QUICKACK before every read, or each APDU waits ~40 ms for a
delayed ACK.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from enum import IntEnum

from cardvault.card.apdu import Sw
from cardvault.clients.connector import DEFAULT_PORT
from cardvault.errors import CardvaultError

__all__ = [
    "DEFAULT_PORT",
    "Control",
    "VpcdClosedError",
    "VpcdError",
    "VpcdLink",
    "encode_frame",
]

log = logging.getLogger(__name__)

MAX_FRAME = 0xFFFF
#: what the card answers when the relay fails: "no precise diagnosis"
RELAY_FAILED = Sw.NO_PRECISE_DIAGNOSIS.wire()


class Control(IntEnum):
    """vpcd's one-byte control messages."""

    POWER_OFF = 0x00
    POWER_ON = 0x01
    RESET = 0x02
    GET_ATR = 0x04


class VpcdError(CardvaultError):
    code = "vpcd_protocol"


class VpcdClosedError(VpcdError):
    """pcscd closed the connection (it stopped, or restarted its driver)."""

    code = "vpcd_closed"


def encode_frame(payload: bytes) -> bytes:
    if not 0 < len(payload) <= MAX_FRAME:
        raise VpcdError(f"a vpcd frame carries 1 to {MAX_FRAME} bytes, not {len(payload)}")
    return len(payload).to_bytes(2, "big") + payload


class VpcdLink:
    """One virtual card in one vpcd reader slot.

    ``relay(apdu) -> response`` answers each command APDU; ``on_power(control)`` hears power
    off / on / reset, so the card behind the relay can forget its security status. Call
    :meth:`serve` (one connection, until pcscd or :meth:`close` ends it) or
    :meth:`serve_forever` (reconnects while ``reconnect(error)`` says so).
    """

    def __init__(
        self,
        *,
        relay: Callable[[bytes], bytes],
        atr: bytes,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        on_power: Callable[[Control], None] | None = None,
        connect_timeout: float = 5.0,
    ) -> None:
        if not 2 <= len(atr) <= 33:
            raise VpcdError("an ATR is 2 to 33 bytes")
        self._relay = relay
        self._atr = atr
        self._address = (host, port)
        self._on_power = on_power
        self._connect_timeout = connect_timeout
        self._socket: socket.socket | None = None
        self._closing = threading.Event()
        self.inserted = threading.Event()

    def serve(self) -> None:
        """Insert the card and answer vpcd until the connection ends.

        Returns when :meth:`close` removed the card; raises VpcdClosedError when pcscd went away
        and OSError when it cannot be reached."""
        self._closing.clear()
        sock = socket.create_connection(self._address, timeout=self._connect_timeout)
        sock.settimeout(None)
        _tune(sock)
        self._socket = sock
        self.inserted.set()
        try:
            self._answer_until_closed(sock)
        finally:
            self.inserted.clear()
            self._socket = None
            sock.close()

    def serve_forever(
        self, reconnect: Callable[[BaseException], float | None] = lambda error: 1.0
    ) -> None:
        """:meth:`serve` again after each loss of the connection, after the delay that
        ``reconnect(error)`` returns; stops when it returns None or :meth:`close` is called."""
        while not self._closing.is_set():
            try:
                self.serve()
            except (OSError, VpcdError) as error:
                if self._closing.is_set():
                    return
                delay = reconnect(error)
                if delay is None:
                    raise
                log.info("vpcd connection lost (%s); reconnecting in %.1f s", error, delay)
                self._closing.wait(delay)

    def close(self) -> None:
        """Remove the card: close the connection (safe from any thread)."""
        self._closing.set()
        sock = self._socket
        if sock is not None:
            with contextlib.suppress(OSError):  # already gone
                sock.shutdown(socket.SHUT_RDWR)

    def _answer_until_closed(self, sock: socket.socket) -> None:
        while True:
            try:
                payload = _read_frame(sock)
            except VpcdClosedError:
                if self._closing.is_set():
                    return
                raise
            answer = self._answer(payload)
            if answer is not None:
                sock.sendall(encode_frame(answer))

    def _answer(self, payload: bytes) -> bytes | None:
        if len(payload) > 1:
            return self._relay_safely(payload)
        control = payload[0]
        if control == Control.GET_ATR:
            return self._atr
        if control in (Control.POWER_OFF, Control.POWER_ON, Control.RESET):
            if self._on_power is not None:
                self._on_power(Control(control))
            return None
        raise VpcdError(f"unknown vpcd control byte {control:02X}")

    def _relay_safely(self, apdu: bytes) -> bytes:
        """The reader waits for an answer whatever happens: a failed relay answers 6F00."""
        started = time.perf_counter()
        try:
            answer = self._relay(apdu)
        except Exception:
            log.exception("the relay failed; answering 6F00")
            return RELAY_FAILED
        log.debug("APDU %s -> %s (%.2f ms)", apdu.hex(), answer.hex(), _ms(started))
        return answer if 2 <= len(answer) <= MAX_FRAME else RELAY_FAILED


def _tune(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    _quickack(sock)


def _quickack(sock: socket.socket) -> None:
    """Linux turns quick ACKs off again by itself, so this is re-armed before every read."""
    option = getattr(socket, "TCP_QUICKACK", None)
    if option is not None:
        sock.setsockopt(socket.IPPROTO_TCP, option, 1)


def _read_frame(sock: socket.socket) -> bytes:
    length = int.from_bytes(_read_exactly(sock, 2), "big")
    if length == 0:
        raise VpcdError("an empty vpcd frame")
    return _read_exactly(sock, length)


def _read_exactly(sock: socket.socket, count: int) -> bytes:
    data = bytearray()
    while len(data) < count:
        _quickack(sock)
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise VpcdClosedError("pcscd closed the virtual reader connection")
        data += chunk
    return bytes(data)


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
