"""VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER and the management key."""

import secrets

import pytest
from tests.support.piv_fakes import DEFAULT_PIN, DEFAULT_PUK, Card, pad, verify_apdu

from cardvault.card import tlv
from cardvault.card.piv import DEFAULT_MANAGEMENT_KEY, Algorithm, PinRef
from cardvault.crypto.piv_mgmt import BlockCipher, ecb_encrypt

AES_KEY = bytes(range(32))
TDES_KEY = bytes(range(24, 48))


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def set_key_apdu(algorithm: Algorithm, key: bytes) -> bytes:
    return h("00FFFFFF") + bytes((3 + len(key), algorithm, 0x9B, len(key))) + key


def test_status_query_reports_tries_then_verified(card: Card) -> None:
    assert card.send("00200080") == h("63C3")  # OpenSC: case 1
    assert card.send(verify_apdu()) == h("9000")
    assert card.send("0020008000") == h("9000")  # yubico-piv-tool: Le=00


def test_wrong_pin_counts_down_and_blocks(card: Card) -> None:
    wrong = verify_apdu(b"000000")
    assert [card.send(wrong) for _ in range(3)] == [h("63C2"), h("63C1"), h("63C0")]
    assert card.send(wrong) == h("6983")
    assert card.send(verify_apdu()) == h("6983")
    assert card.send("00200080") == h("6983")


def test_right_pin_resets_the_count_and_wrong_one_forgets_verification(card: Card) -> None:
    card.send(verify_apdu(b"000000"))
    assert card.send(verify_apdu()) == h("9000")
    assert card.state.pin_tries.left == 3
    assert card.send(verify_apdu(b"000000")) == h("63C2")
    assert not card.state.security.pin_verified


def test_p1_ff_resets_the_security_status(card: Card) -> None:
    card.send(verify_apdu())
    assert card.send("0020FF80") == h("9000")
    assert card.send("00200080") == h("63C3")


@pytest.mark.parametrize(
    ("apdu", "sw"),
    [
        ("0020008004" + "31323334", "6A80"),
        ("0020000008" + "3132333435363738", "6A88"),
        ("0020018000", "6A86"),
    ],
)
def test_verify_refuses_bad_blocks_and_references(card: Card, apdu: str, sw: str) -> None:
    assert card.send(apdu) == h(sw)
    assert card.state.pin_tries.left == 3


def test_change_pin_needs_the_old_pin(card: Card) -> None:
    assert card.send(h("0024008010") + pad(b"999999") + pad(b"24681357")) == h("63C2")
    assert card.send(h("0024008010") + pad(DEFAULT_PIN) + pad(b"24681357")) == h("9000")
    assert card.ports.references[PinRef.PIV_PIN] == pad(b"24681357")
    assert card.send(verify_apdu(b"24681357")) == h("9000")


@pytest.mark.parametrize("new", [b"12345", b"12a456", b"123\xff4567"])
def test_new_pin_must_be_6_to_8_digits_and_costs_no_try(card: Card, new: bytes) -> None:
    block = new[:8].ljust(8, b"\xff")
    assert card.send(h("0024008010") + pad(DEFAULT_PIN) + block) == h("6A80")
    assert card.state.pin_tries.left == 3


def test_change_puk(card: Card) -> None:
    assert card.send(h("0024008110") + pad(DEFAULT_PUK) + pad(b"97531864")) == h("9000")
    assert card.ports.references[PinRef.PUK] == pad(b"97531864")


def test_puk_unblocks_the_pin_with_a_new_one(card: Card) -> None:
    for _ in range(3):
        card.send(verify_apdu(b"000000"))
    assert card.send(h("002C008010") + pad(b"00000000") + pad(b"654321")) == h("63C2")
    assert card.send(h("002C008010") + pad(DEFAULT_PUK) + pad(b"654321")) == h("9000")
    assert card.state.pin_tries.left == 3
    assert card.send(verify_apdu(b"654321")) == h("9000")


def test_blocked_puk_refuses_without_asking_the_ports(card: Card) -> None:
    for _ in range(3):
        card.send(h("002C008010") + pad(b"00000000") + pad(b"654321"))
    card.ports.references[PinRef.PUK] = pad(b"00000000")
    assert card.send(h("002C008010") + pad(b"00000000") + pad(b"654321")) == h("6983")


def test_mutual_authentication_with_the_default_3des_key(card: Card) -> None:
    witness = card.send("008703 9B 04 7C028000".replace(" ", ""))
    assert witness[:4] == h("7C0A8008")
    assert witness[-2:] == h("9000")
    assert card.authenticate() == 0x9000
    assert card.state.security.management_authenticated


def test_mutual_authentication_with_a_wrong_key_fails_and_forgets_the_challenge(card: Card) -> None:
    assert card.authenticate(key=bytes(24)) == 0x6982
    assert not card.state.security.management_authenticated
    assert card.state.challenge is None


def test_second_step_without_a_challenge_is_refused(card: Card) -> None:
    assert card.send("0087039B167C14800800000000000000008108" + "00" * 8) == h("6985")


def test_a_challenge_is_dropped_by_any_other_command(card: Card) -> None:
    card.send("0087039B047C028000")
    card.send("00CB3FFF035C017E")
    assert card.state.challenge is None


def test_external_authentication_as_opensc_piv_tool_does_it(card: Card) -> None:
    answer = card.send("0087039B047C028100")
    assert answer[:4] == h("7C0A8108")
    challenge = answer[4:12]
    response = ecb_encrypt(BlockCipher.TDES, DEFAULT_MANAGEMENT_KEY, challenge)
    assert card.send(h("0087039B0C7C0A8208") + response) == h("9000")
    assert card.state.security.management_authenticated


def test_management_algorithm_must_match(card: Card) -> None:
    assert card.send("00870C9B047C028000") == h("6A86")


def test_set_management_key_needs_authentication(card: Card) -> None:
    assert card.send(set_key_apdu(Algorithm.TDES, TDES_KEY)) == h("6982")


def test_the_default_key_works_only_until_it_is_changed(card: Card) -> None:
    card.authenticate()
    assert card.send(set_key_apdu(Algorithm.TDES, TDES_KEY)) == h("9000")
    assert not card.state.management_key_default
    assert card.ports.management == (Algorithm.TDES, TDES_KEY)
    assert card.authenticate() == 0x6982
    assert card.authenticate(key=TDES_KEY) == 0x9000


def test_the_default_key_cannot_be_set_again(card: Card) -> None:
    card.authenticate()
    card.send(set_key_apdu(Algorithm.TDES, TDES_KEY))
    assert card.send(set_key_apdu(Algorithm.TDES, DEFAULT_MANAGEMENT_KEY)) == h("6A80")
    assert card.ports.management == (Algorithm.TDES, TDES_KEY)


def test_aes_256_management_key(card: Card) -> None:
    card.authenticate()
    assert card.send(set_key_apdu(Algorithm.AES256, AES_KEY)) == h("9000")
    assert card.state.management_algorithm is Algorithm.AES256
    assert card.authenticate(key=AES_KEY, algorithm=Algorithm.AES256) == 0x9000


@pytest.mark.parametrize(
    "body",
    [
        h("039B10") + bytes(16),
        h("039A18") + bytes(24),
        h("119B20") + bytes(32),
        h("0C9B18") + bytes(24),
        h("03"),
    ],
)
def test_set_management_key_refuses_keys_that_do_not_fit(card: Card, body: bytes) -> None:
    card.authenticate()
    assert card.send(h("00FFFFFF") + bytes((len(body),)) + body) == h("6A80")


def test_unknown_authentication_step_is_refused(card: Card) -> None:
    body = tlv.encode(0x7C, tlv.encode(0x82, secrets.token_bytes(8)) + tlv.encode(0x81, b""))
    assert card.send(h("0087039B") + bytes((len(body),)) + body) == h("6A80")
