"""The connector's public-object cache answers exactly as the applet would."""

from __future__ import annotations

import os

import pytest
from tests.support.piv_fakes import Card

from cardvault.card.piv import ObjectId, blank_card
from cardvault.card.piv.data import public_objects
from cardvault.card.piv.objects import certificate_container
from cardvault.clients.connector.cache import LocalAnswers

CERT = os.urandom(1200)  # the cache does not parse certificates


@pytest.fixture
def card() -> Card:
    state = blank_card(serial=1, guid=bytes(range(16)))
    state = state.with_object(ObjectId.CERT_PIV_AUTHENTICATION, certificate_container(CERT))
    return Card(state=state)


def _run(card: Card, cache: LocalAnswers, apdus: list[str]) -> list[tuple[bytes, bytes]]:
    """Each APDU answered by the cache and by the applet itself."""
    return [(cache.answer(bytes.fromhex(a)) or b"", card.send(a)) for a in apdus]


@pytest.mark.parametrize(
    "apdus",
    [
        # OpenSC: Le=08 to learn the length, then the exact length
        ["00cb3fff055c035fc10708", "00cb3fff055c035fc10735"],
        # yubico-piv-tool: no Le at all
        ["00cb3fff055c035fc102"],
        # a certificate longer than 256 bytes, fetched with GET RESPONSE
        ["00cb3fff055c035fc10500", "00c0000000", "00c0000000", "00c0000000", "00c0000000"],
        ["00cb3fff055c035fc105", "00c0000000", "00c0000000", "00c0000000", "00c00000a8"],
        # Discovery, an absent object, nothing left for GET RESPONSE
        ["00cb3fff035c017e00", "00cb3fff055c035fc10b00", "00c0000000"],
    ],
)
def test_the_cache_answers_like_the_applet(card: Card, apdus: list[str]) -> None:
    cache = LocalAnswers(public_objects(card.state))
    for local, applet in _run(card, cache, apdus):
        assert local == applet


def test_other_commands_go_to_the_card(card: Card) -> None:
    cache = LocalAnswers(public_objects(card.state))
    for apdu in (
        "00200080",  # VERIFY status
        "00cb3fff055c035fc103",  # fingerprints: PIN-protected, not cached
        "00a4040005a000000308",  # SELECT
        "00cb3fff05",  # malformed
        "00cb3fff0000055c035fc105",  # extended length
    ):
        assert cache.answer(bytes.fromhex(apdu)) is None
    assert cache.hits == 0


def test_get_response_after_a_forwarded_command_goes_to_the_card(card: Card) -> None:
    cache = LocalAnswers(public_objects(card.state))
    assert cache.answer(bytes.fromhex("00cb3fff055c035fc10500")) is not None
    assert cache.answer(bytes.fromhex("00200080")) is None
    assert cache.answer(bytes.fromhex("00c0000000")) is None


def test_power_up_drops_what_was_waiting(card: Card) -> None:
    cache = LocalAnswers(public_objects(card.state))
    assert cache.answer(bytes.fromhex("00cb3fff055c035fc10500"))[-2] == 0x61  # type: ignore[index]
    cache.reset()
    assert cache.answer(bytes.fromhex("00c0000000")) is None


def test_a_whole_answer_is_handed_out_like_the_applet_would(card: Card) -> None:
    """The service drained a long answer; the connector cuts it up by the client's Le."""
    local = LocalAnswers()
    read = bytes.fromhex("00cb3fff055c035fc10500")
    whole_answer = card.transmit(read)
    applet_pieces = [card.send(read)]
    while applet_pieces[-1][-2] == 0x61:
        applet_pieces.append(card.send("00c0000000"))
    pieces = [local.whole(read, whole_answer[0] + whole_answer[1].to_bytes(2, "big"))]
    while pieces[-1][-2] == 0x61:
        answer = local.answer(bytes.fromhex("00c0000000"))
        assert answer is not None
        pieces.append(answer)
    assert pieces == applet_pieces


@pytest.mark.parametrize(
    ("apdu", "ne"),
    [
        ("00200080", 256),
        ("0020008000", 256),
        ("00cb3fff055c035fc10508", 8),
        ("00cb3fff055c035fc105", 256),
        ("00cb3fff00000c5c035fc105", None),
    ],
)
def test_expected_length_of_short_apdus(apdu: str, ne: int | None) -> None:
    assert LocalAnswers().expected_length(bytes.fromhex(apdu)) == ne


def test_constant_answers_are_answered_locally() -> None:
    local = LocalAnswers(constant={bytes.fromhex("00a4040006a00000000101"): b"\x6a\x82"})
    assert local.answer(bytes.fromhex("00a4040006a00000000101")) == b"\x6a\x82"
    assert local.answer(bytes.fromhex("00c0000000")) == b"\x69\x85"
    assert local.answer(bytes.fromhex("00a4040006a00000000102")) is None


def test_chain_parts_are_held_and_sent_with_the_last_part() -> None:
    local = LocalAnswers()
    first, middle = bytes.fromhex("10db3fff03010203"), bytes.fromhex("10db3fff020405")
    last = bytes.fromhex("00db3fff0106")
    assert local.chain(first) == (True, ())
    assert local.chain(middle) == (True, ())
    assert local.chain(last) == (False, (first, middle))
    assert local.chain(last) == (False, ())


def test_another_command_drops_a_held_chain() -> None:
    local = LocalAnswers()
    assert local.chain(bytes.fromhex("10db3fff03010203")) == (True, ())
    assert local.chain(bytes.fromhex("00200080")) == (False, ())
    assert local.chain(bytes.fromhex("00db3fff0106")) == (False, ())


def test_only_well_formed_short_parts_are_held() -> None:
    local = LocalAnswers()
    assert local.chain(bytes.fromhex("10db3fff0501")) == (False, ())  # Lc says 5, one byte
    assert local.chain(bytes.fromhex("10db3fff0000020102")) == (False, ())  # extended
    assert local.chain(bytes.fromhex("1c87079a020102")) == (False, ())  # secure messaging


def test_standing_answers_hold_until_power_up() -> None:
    status, ok = bytes.fromhex("00200080"), b"\x90\x00"
    local = LocalAnswers()
    local.stand({status: ok})
    assert local.answer(status) == ok
    assert local.answer(status) == ok  # a local answer leaves it standing
    local.power_up()
    assert local.answer(status) is None


def test_standing_answers_are_replaced_by_the_next_ones() -> None:
    status = bytes.fromhex("00200080")
    local = LocalAnswers()
    local.stand({status: b"\x90\x00"})
    local.stand({})
    assert local.answer(status) is None
