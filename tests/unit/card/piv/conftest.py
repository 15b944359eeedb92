"""The card fixture: the applet over the in-memory ports of tests/support/piv_fakes.py."""

import pytest
from tests.support.piv_fakes import Card

from cardvault.card.piv import blank_card

GUID = bytes(range(16))
SERIAL = 12345678


@pytest.fixture
def card() -> Card:
    """A blank card: default management key, PIN 123456, PUK 12345678, no keys."""
    return Card(state=blank_card(serial=SERIAL, guid=GUID))
