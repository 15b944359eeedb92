"""Helpers of the PC/SC tests: waiting for pcscd and the reader, and the simulated card that
stands in for the service behind the vpcd link."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from piv_fakes import Card

from cardvault.card.piv import blank_card
from cardvault.clients.connector.vpcd import Control

READER = "Virtual PCD 00 00"
TOOLS = ("pcscd", "opensc-tool", "pkcs11-tool", "yubico-piv-tool", "openssl")
PID_FILE = Path("/run/pcscd/pcscd.pid")


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what} after {timeout} s")
        time.sleep(0.05)


def readers() -> str:
    result = subprocess.run(["opensc-tool", "-l"], capture_output=True, text=True, check=False)
    return result.stdout


def card_present() -> bool:
    return any(line.split()[1:2] == ["Yes"] and READER in line for line in readers().splitlines())


def _running_pcscd() -> int | None:
    try:
        pid = int(PID_FILE.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def running_pcscd() -> int | None:
    try:
        pid = int(PID_FILE.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


class SimulatedCard:
    """Stands in for the service: the applet answers the link's APDUs, one at a time."""

    def __init__(self) -> None:
        self.card = Card(state=blank_card(serial=0x0BC614E, guid=os.urandom(16)))
        self._lock = threading.Lock()

    def relay(self, apdu: bytes) -> bytes:
        with self._lock:
            return self.card.send(apdu)

    def power(self, control: Control) -> None:
        with self._lock:
            self.card.state = self.card.state.powered_up()
