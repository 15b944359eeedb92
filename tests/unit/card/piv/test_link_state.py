"""Per-connection state split from the card's state, and stored."""

from __future__ import annotations

import pytest
from tests.unit.card.piv.test_state import busy_state

from cardvault.card.piv import StateMalformed, dump_state
from cardvault.card.piv.link_state import (
    LinkState,
    dump_link_state,
    join,
    load_link_state,
    split,
)


def test_split_and_join_round_trip() -> None:
    state = busy_state()
    card, link = split(state)
    assert join(card, link) == state
    assert card == state.powered_up()
    assert link.security.pin_verified
    assert link.challenge is not None


def test_the_card_part_holds_nothing_of_the_connection() -> None:
    card, _ = split(busy_state())
    assert dump_state(card) == dump_state(busy_state().powered_up())


def test_link_state_round_trips_through_json() -> None:
    _, link = split(busy_state())
    assert load_link_state(dump_link_state(link)) == link
    assert load_link_state(dump_link_state(LinkState())) == LinkState()


@pytest.mark.parametrize("raw", [b"", b"{}", b'{"security": 1}', b"[]", b"\xff"])
def test_bad_link_state_is_refused(raw: bytes) -> None:
    with pytest.raises(StateMalformed):
        load_link_state(raw)
