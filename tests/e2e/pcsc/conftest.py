"""PC/SC tier: a real pcscd with the vpcd driver, a virtual PIV card, unmodified tools.

Until the service's APDU relay exists, the card behind the vpcd link is the applet run
in-process over the in-memory ports (tests/support/piv_fakes.py). Only one pcscd can run on
a machine, so an already running one is reused and these tests must not run in parallel.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

_SUPPORT = str(Path(__file__).resolve().parents[2] / "support")
if _SUPPORT not in sys.path:
    sys.path.insert(0, _SUPPORT)

from piv_pcsc import READER, TOOLS, SimulatedCard, card_present, readers, running_pcscd, wait_for  # noqa: E402

from cardvault.card.piv import ATR  # noqa: E402
from cardvault.clients.connector.vpcd import VpcdLink  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "pcsc: needs pcscd with vpcd, OpenSC and yubico-piv-tool")


@pytest.fixture(scope="session")
def pcscd() -> Iterator[None]:
    """pcscd with the vpcd reader; started here (and stopped by PID) unless one runs."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"PC/SC tools missing: {', '.join(missing)}")
    if running_pcscd() is not None:
        wait_for(lambda: READER in readers(), timeout=10, what="the vpcd reader")
        yield
        return
    process = subprocess.Popen(["pcscd", "--foreground"], stdout=subprocess.DEVNULL)
    try:
        wait_for(lambda: READER in readers(), timeout=10, what="the vpcd reader")
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def virtual_card(pcscd: None) -> Iterator[SimulatedCard]:
    """A blank virtual PIV card inserted in the reader for the whole session."""
    simulated = SimulatedCard()
    link = VpcdLink(relay=simulated.relay, atr=ATR, on_power=simulated.power)
    thread = threading.Thread(target=link.serve, name="vpcd-link", daemon=True)
    thread.start()
    try:
        wait_for(card_present, timeout=15, what="the card in the reader")
        yield simulated
    finally:
        link.close()
        thread.join(timeout=5)
