"""The vpcd link against a real TCP listener playing pcscd's vpcd driver."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from tests.support.fake_vpcd import FakeVpcd

from cardvault.clients.connector.vpcd import (
    Control,
    VpcdClosedError,
    VpcdError,
    VpcdLink,
    encode_frame,
)

ATR = bytes.fromhex("3B 8B 80 01 80 F9 A0 00 00 03 08 00 00 10 00 C8")


@pytest.fixture
def vpcd() -> Iterator[FakeVpcd]:
    fake = FakeVpcd()
    yield fake
    fake.close()


def start(link: VpcdLink) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            link.serve()
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread, errors


def test_answers_atr_apdus_and_power_events(vpcd: FakeVpcd) -> None:
    power: list[Control] = []
    link = VpcdLink(
        relay=lambda apdu: apdu[1:2] + b"\x90\x00", atr=ATR, port=vpcd.port, on_power=power.append
    )
    thread, errors = start(link)
    vpcd.accept()
    assert vpcd.exchange(b"\x04") == ATR
    vpcd.send_control(Control.POWER_ON)
    vpcd.send_control(Control.RESET)
    assert vpcd.exchange(bytes.fromhex("00A4040000")) == bytes.fromhex("A49000")
    vpcd.send_control(Control.POWER_OFF)
    assert vpcd.exchange(b"\x04") == ATR
    assert power == [Control.POWER_ON, Control.RESET, Control.POWER_OFF]
    link.close()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert errors == []


def test_a_failing_relay_answers_6f00_and_keeps_serving(vpcd: FakeVpcd) -> None:
    def relay(apdu: bytes) -> bytes:
        raise RuntimeError("service unreachable")

    link = VpcdLink(relay=relay, atr=ATR, port=vpcd.port)
    thread, _ = start(link)
    vpcd.accept()
    assert vpcd.exchange(bytes.fromhex("00CB3FFF035C017E")) == b"\x6f\x00"
    assert vpcd.exchange(b"\x04") == ATR
    link.close()
    thread.join(timeout=5)


def test_pcscd_going_away_raises_closed(vpcd: FakeVpcd) -> None:
    link = VpcdLink(relay=lambda apdu: b"\x90\x00", atr=ATR, port=vpcd.port)
    thread, errors = start(link)
    conn = vpcd.accept()
    assert vpcd.exchange(b"\x04") == ATR
    conn.close()
    thread.join(timeout=5)
    assert len(errors) == 1
    assert isinstance(errors[0], VpcdClosedError)


def test_unknown_control_byte_is_a_protocol_error(vpcd: FakeVpcd) -> None:
    link = VpcdLink(relay=lambda apdu: b"\x90\x00", atr=ATR, port=vpcd.port)
    thread, errors = start(link)
    conn = vpcd.accept()
    conn.sendall(encode_frame(b"\x07"))
    thread.join(timeout=5)
    assert isinstance(errors[0], VpcdError)


def test_serve_forever_reconnects_until_told_to_stop(vpcd: FakeVpcd) -> None:
    seen: list[BaseException] = []

    def reconnect(error: BaseException) -> float | None:
        seen.append(error)
        return 0.01 if len(seen) < 2 else None

    link = VpcdLink(relay=lambda apdu: b"\x90\x00", atr=ATR, port=vpcd.port)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            link.serve_forever(reconnect)
        except VpcdError as error:
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    vpcd.accept().close()
    vpcd.accept().close()
    thread.join(timeout=5)
    assert len(seen) == 2
    assert isinstance(errors[0], VpcdClosedError)


def test_frames_are_length_prefixed_and_bounded() -> None:
    assert encode_frame(b"\x90\x00") == b"\x00\x02\x90\x00"
    with pytest.raises(VpcdError):
        encode_frame(b"")
    with pytest.raises(VpcdError):
        encode_frame(bytes(0x10000))
