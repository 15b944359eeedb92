"""A contactless HR card for the PC/SC tests: it connects to pcscd's vpcd driver and
answers ``FF CA 00 00 00`` (PC/SC part 3 GET DATA, UID) with its UID.

Written on its own (not with the product's vpcd connector) so that the agent under test
meets an independent card. vpcd frames are ``uint16 big-endian length || payload``; a
one-byte payload is a control byte (0 off, 1 on, 2 reset, 4 ATR: only the last is
answered). TCP_NODELAY is set: vpcd waits for each answer, and Nagle's algorithm would
hold it back. Placing the card on the reader is connecting; taking it away is closing.

Run by hand:  python -m tests.support.hr_test_card --port 35964 --uid 04A22B1AC35E80
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum

#: PC/SC part 3 ATR of a contactless storage card (Mifare Classic 1K)
ATR = bytes.fromhex("3B8F8001804F0CA000000306030001000000006A")
GET_UID = bytes.fromhex("FFCA000000")
SW_OK = b"\x90\x00"
SW_FUNCTION_NOT_SUPPORTED = b"\x6a\x81"
SW_CLA_NOT_SUPPORTED = b"\x6e\x00"
SLOT_1_PORT = 35964  # vpcd's second reader, "Virtual PCD 00 01"


class Behaviour(Enum):
    ANSWER = "answer"  # a reader that reads UIDs
    REFUSE = "refuse"  # a reader or card that does not support GET DATA UID (6A81)
    VANISH = "vanish"  # the card leaves the field while the reader asks for its UID


class HrTestCard:
    def __init__(
        self,
        uid: str,
        *,
        port: int = SLOT_1_PORT,
        behaviour: Behaviour = Behaviour.ANSWER,
        host: str = "127.0.0.1",
    ) -> None:
        self.uid = bytes.fromhex(uid)
        self.address = (host, port)
        self.behaviour = behaviour
        self.apdus: list[bytes] = []
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    # --- placing and taking away -----------------------------------------------------

    def place(self) -> None:
        """Put the card on the reader (connect to vpcd) and answer it from a thread."""
        sock = socket.create_connection(self.address, timeout=5)
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
        self._thread.start()

    def take_away(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def tap(self, *, hold: float = 1.0) -> None:
        """Place the card for ``hold`` seconds, then take it away."""
        self.place()
        time.sleep(hold)
        self.take_away()

    # --- the card's side of vpcd ----------------------------------------------------

    def _serve(self, sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while True:
                payload = _read_frame(sock)
                if payload is None:
                    return
                answer = self._answer(payload)
                if answer is None and self.behaviour is Behaviour.VANISH and len(payload) > 1:
                    sock.shutdown(socket.SHUT_RDWR)  # gone before the answer
                    return
                if answer is not None:
                    sock.sendall(len(answer).to_bytes(2, "big") + answer)

    def _answer(self, payload: bytes) -> bytes | None:
        if len(payload) == 1:
            return ATR if payload[0] == 0x04 else None
        self.apdus.append(payload)
        if payload[:4] != GET_UID[:4]:
            return SW_CLA_NOT_SUPPORTED
        if self.behaviour is Behaviour.VANISH:
            return None
        if self.behaviour is Behaviour.REFUSE:
            return SW_FUNCTION_NOT_SUPPORTED
        return self.uid + SW_OK


def _read_frame(sock: socket.socket) -> bytes | None:
    header = _read_exactly(sock, 2)
    if header is None:
        return None
    return _read_exactly(sock, int.from_bytes(header, "big"))


def _read_exactly(sock: socket.socket, count: int) -> bytes | None:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            return None
        data += chunk
    return data


@contextmanager
def on_reader(card: HrTestCard) -> Iterator[HrTestCard]:
    card.place()
    try:
        yield card
    finally:
        card.take_away()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uid", default="04A22B1AC35E80")
    parser.add_argument("--port", type=int, default=SLOT_1_PORT)
    parser.add_argument("--hold", type=float, default=3.0, help="seconds on the reader")
    args = parser.parse_args()
    HrTestCard(args.uid, port=args.port).tap(hold=args.hold)


if __name__ == "__main__":
    main()
