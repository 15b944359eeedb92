"""A holder's card's use in words: the phrase, with the address the request came from."""

from __future__ import annotations

from cardvault.services.holders.activity import words


def test_a_sign_in_reads_with_its_address_and_factor() -> None:
    details = {"method": "push", "client_address": "10.2.3.4"}
    assert words("auth.second_factor", "success", None, details) == (
        "Signed in from 10.2.3.4 with push"
    )


def test_a_refusal_keeps_its_phrase_and_says_where_from() -> None:
    details = {"client_address": "192.0.2.7"}
    assert words("auth.passcode", "failure", None, details) == (
        "Wrong passcode at sign-in (from 192.0.2.7)"
    )


def test_an_event_without_an_address_is_its_phrase() -> None:
    assert words("card.passcode_changed", "success", None, {}) == "Passcode changed by the holder"
    assert words("card.passcode_changed", "success", None, {"client_address": 7}) == (
        "Passcode changed by the holder"
    )
