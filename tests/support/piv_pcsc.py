"""The simulated card of the PC/SC tests: the applet answering the vpcd link in-process, in
place of the service. The PC/SC plumbing (waiting, readers, pcscd, the tools) is
tests/support/pcsc_stack.py, defined once for the tests and the benchmarks."""

from __future__ import annotations

import os
import threading

from cardvault.card.piv import blank_card
from cardvault.clients.connector.vpcd import Control
from tests.support.piv_fakes import Card


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
