"""Which answers the service lets the connector give until its next request (answers.py):
only the PIN status query, only while the applet would answer it 9000 without moving."""

from dataclasses import replace

from cardvault.card.piv import PivState, blank_card
from cardvault.card.piv.state import RetryCounter
from cardvault.services.piv.answers import STATUS_QUERIES, constant_answers, standing_answers

OK = b"\x90\x00"


def _card() -> PivState:
    return blank_card(serial=1, guid=bytes(range(16)))


def test_nothing_stands_while_the_pin_is_not_verified() -> None:
    assert standing_answers(_card()) == {}


def test_the_status_of_a_verified_pin_stands() -> None:
    verified = _card().with_security(pin_verified=True)
    assert standing_answers(verified) == dict.fromkeys(STATUS_QUERIES, OK)


def test_a_blocked_pin_stands_for_nothing() -> None:
    blocked = replace(_card(), pin_tries=RetryCounter(left=0)).with_security(pin_verified=True)
    assert standing_answers(blocked) == {}


def test_nothing_stands_while_an_answer_waits_for_get_response() -> None:
    """The status query would drop the waiting answer: a change, so it is asked for."""
    waiting = replace(_card().with_security(pin_verified=True), pending_response=b"\x01\x02")
    assert standing_answers(waiting) == {}


def test_the_status_query_is_never_a_constant() -> None:
    assert not set(STATUS_QUERIES) & set(constant_answers(_card()))
