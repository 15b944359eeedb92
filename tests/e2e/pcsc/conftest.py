"""PC/SC tier: a real pcscd with the vpcd driver, a virtual PIV card, unmodified tools.

``virtual_card`` is the applet run in-process over the in-memory ports
(tests/support/piv_fakes.py); test_service_channel.py runs the real service and connector.
Only one pcscd can run on a machine and other engineers' tests use it too: the whole
session holds an exclusive flock on /tmp/cardvault-pcsc.lock, reuses a running pcscd and
uses vpcd slot 0 only. These tests must not run in parallel.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from tests.support import pcsc_stack
from tests.support.pcsc_stack import card_present
from tests.support.piv_pcsc import SimulatedCard

from cardvault.card.piv import ATR
from cardvault.clients.connector.vpcd import VpcdLink


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "pcsc: needs pcscd with vpcd, OpenSC and yubico-piv-tool")


@pytest.fixture(scope="session")
def pcscd() -> Iterator[None]:
    """pcscd with the vpcd reader, under the machine's PC/SC lock for the whole session."""
    missing = pcsc_stack.missing_tools()
    if missing:
        pytest.skip(f"PC/SC tools missing: {', '.join(missing)}")
    with pcsc_stack.exclusive_pcsc(), pcsc_stack.pcscd_running():
        yield


@pytest.fixture(scope="module")
def virtual_card(pcscd: None) -> Iterator[SimulatedCard]:
    """A blank virtual PIV card inserted in the reader (slot 0) for one module."""
    pcsc_stack.wait_until_reader_free()
    simulated = SimulatedCard()
    link = VpcdLink(relay=simulated.relay, atr=ATR, on_power=simulated.power)
    thread = threading.Thread(target=link.serve, name="vpcd-link", daemon=True)
    thread.start()
    try:
        pcsc_stack.wait_for(card_present, timeout=15, what="the card in the reader")
        yield simulated
    finally:
        link.close()
        thread.join(timeout=5)
        pcsc_stack.wait_for(lambda: not card_present(), timeout=10, what="the card to go")
