"""Random bytes from the card: OpenSC's challenge request (GENERAL AUTHENTICATE, algorithm 00,
key 9B, ``7C 02 81 00``) and ISO GET CHALLENGE. Neither needs the PIN or changes the state."""

from tests.support.piv_fakes import Card, verify_apdu

from cardvault.card import tlv


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def test_opensc_challenge_request_answers_sixteen_random_bytes(card: Card) -> None:
    before = card.state
    first, sw = card.transmit("008700 9B 04 7C028100 00".replace(" ", ""))
    assert sw == 0x9000
    assert first[:4] == h("7C128110")
    second, _ = card.transmit("0087009B047C02810000")
    assert len(tlv.decode_single(tlv.decode_single(first, 0x7C), 0x81)) == 16
    assert first != second
    assert card.state == before


def test_the_challenge_request_leaves_a_management_authentication_alone(card: Card) -> None:
    witness = card.send("0087039B047C028000")
    assert witness[-2:] == h("9000")
    pending = card.state.challenge
    card.send("0087009B047C02810000")
    assert card.state.challenge == pending


def test_algorithm_00_serves_only_the_challenge_request(card: Card) -> None:
    assert card.send("0087009B047C028000") == h("6A86")


def test_get_challenge_answers_le_random_bytes(card: Card) -> None:
    before = card.state
    data, sw = card.transmit("0084000008")
    assert (len(data), sw) == (8, 0x9000)
    data, sw = card.transmit("0084000000")
    assert (len(data), sw) == (256, 0x9000)
    assert card.state == before


def test_get_challenge_needs_no_pin_and_checks_its_parameters(card: Card) -> None:
    card.send(verify_apdu(b"000000"))
    assert card.transmit("0084000010")[1] == 0x9000
    assert card.send("0084010008") == h("6A86")
