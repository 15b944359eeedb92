import sys
from pathlib import Path

# tests/support holds the PIV fakes shared with the PC/SC tests (module names prefixed piv_)
_SUPPORT = str(Path(__file__).resolve().parents[2] / "support")
if _SUPPORT not in sys.path:
    sys.path.insert(0, _SUPPORT)

import pytest  # noqa: E402
from piv_fakes import Card  # noqa: E402

from cardvault.card.piv import blank_card  # noqa: E402

GUID = bytes(range(16))
SERIAL = 12345678


@pytest.fixture
def card() -> Card:
    """A blank card: default management key, PIN 123456, PUK 12345678, no keys."""
    return Card(state=blank_card(serial=SERIAL, guid=GUID))
