"""A TCP listener that plays pcscd's vpcd driver, for tests of the card side without pcscd."""

from __future__ import annotations

import socket

from cardvault.clients.connector.vpcd import Control, encode_frame


class FakeVpcd:
    """Listens like vpcd does; the test drives the accepted connection."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.conn: socket.socket | None = None

    def accept(self) -> socket.socket:
        self.server.settimeout(5)
        self.conn, _ = self.server.accept()
        self.conn.settimeout(5)
        return self.conn

    def exchange(self, payload: bytes) -> bytes:
        assert self.conn is not None
        self.conn.sendall(len(payload).to_bytes(2, "big"))  # like vpcd 3.3: two writes
        self.conn.sendall(payload)
        length = int.from_bytes(self._read(2), "big")
        return self._read(length)

    def send_control(self, control: Control) -> None:
        assert self.conn is not None
        self.conn.sendall(encode_frame(bytes((control,))))

    def closed_by_card(self, timeout: float = 5) -> bool:
        """True once the card closed the connection (it was taken out of the reader)."""
        assert self.conn is not None
        self.conn.settimeout(timeout)
        try:
            return self.conn.recv(1) == b""
        except TimeoutError:
            return False

    def _read(self, count: int) -> bytes:
        assert self.conn is not None
        data = b""
        while len(data) < count:
            chunk = self.conn.recv(count - len(data))
            assert chunk, "the card closed the connection"
            data += chunk
        return data

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.server.close()
