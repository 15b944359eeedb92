"""The card PIN rule: 6-8 digits, not one digit repeated, not a straight run."""

from __future__ import annotations

import pytest

from cardvault.domain.card_pin import WeakCardPin, check_card_pin, rule
from cardvault.errors import InvalidInput


@pytest.mark.parametrize("pin", ["271828", "31415926", "1357913", "102938", "11111112", "123457"])
def test_six_to_eight_digits_that_are_not_trivial_are_accepted(pin: str) -> None:
    check_card_pin(pin)


@pytest.mark.parametrize("pin", ["12345", "123456789", "", "1234a6", "12 456", "١٢٣٤٥٦٧"])
def test_anything_but_six_to_eight_ascii_digits_is_refused(pin: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_card_pin(pin)
    assert not isinstance(refused.value, WeakCardPin)
    assert refused.value.extensions() == {"field": "pin"}


@pytest.mark.parametrize("pin", ["000000", "9999999", "77777777"])
def test_one_digit_repeated_is_refused(pin: str) -> None:
    with pytest.raises(WeakCardPin, match="one digit repeated"):
        check_card_pin(pin)


@pytest.mark.parametrize("pin", ["123456", "23456789", "987654", "6543210", "345678"])
def test_a_straight_run_up_or_down_is_refused(pin: str) -> None:
    with pytest.raises(WeakCardPin, match="straight up or down"):
        check_card_pin(pin)


@pytest.mark.parametrize("pin", ["135790", "9135790"])
def test_an_organisation_minimum_refuses_shorter_pins_naming_it(pin: str) -> None:
    with pytest.raises(InvalidInput, match="at least 8 digits") as caught:
        check_card_pin(pin, minimum=8)
    assert caught.value.field == "pin"


def test_an_organisation_minimum_only_raises_the_floor() -> None:
    check_card_pin("13579024", minimum=8)
    check_card_pin("1357902", minimum=7)
    with pytest.raises(InvalidInput, match="6 to 8 digits"):
        check_card_pin("135790246", minimum=8)
    with pytest.raises(InvalidInput, match="6 to 8 digits"):
        check_card_pin("13579", minimum=6)


@pytest.mark.parametrize(
    ("minimum", "words"),
    [(6, "6 to 8 digits"), (7, "7 or 8 digits"), (8, "8 digits"), (4, "6 to 8 digits")],
)
def test_the_rule_in_words_follows_the_organisation_minimum(minimum: int, words: str) -> None:
    assert rule(minimum) == words
