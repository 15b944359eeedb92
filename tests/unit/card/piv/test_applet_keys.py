"""GENERATE ASYMMETRIC KEY PAIR and GENERAL AUTHENTICATE with private keys, checked with
``cryptography`` as an independent verifier."""

import hashlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from tests.support.piv_fakes import Card, verify_apdu

from cardvault.card import tlv
from cardvault.card.apdu import CommandApdu
from cardvault.card.piv import Algorithm, Slot

SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def pkcs1_block(message: bytes, size: int = 256) -> bytes:
    payload = SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
    return b"\x00\x01" + b"\xff" * (size - len(payload) - 3) + b"\x00" + payload


def sign_apdus(algorithm: Algorithm, slot: Slot, data: bytes) -> list[bytes]:
    """GENERAL AUTHENTICATE as yubico-piv-tool sends it: chained in 255-byte pieces, no Le."""
    body = tlv.encode(0x7C, tlv.encode(0x82, b"") + tlv.encode(0x81, data))
    pieces = [body[i : i + 255] for i in range(0, len(body), 255)]
    return [
        CommandApdu(
            cla=0x10 if i < len(pieces) - 1 else 0, ins=0x87, p1=algorithm, p2=slot, data=piece
        ).to_bytes()
        for i, piece in enumerate(pieces)
    ]


def general_authenticate(
    card: Card, algorithm: Algorithm, slot: Slot, data: bytes
) -> tuple[bytes, int]:
    *chained, last = sign_apdus(algorithm, slot, data)
    for apdu in chained:
        assert card.send(apdu) == h("9000")
    answer, sw = card.transmit(last)
    return (tlv.decode_map(tlv.decode_single(answer, 0x7C))[0x82] if sw == 0x9000 else b""), sw


def generate(card: Card, slot: Slot, algorithm: Algorithm) -> dict[int, bytes]:
    data, sw = card.transmit(h("004700") + bytes((slot, 5, 0xAC, 3, 0x80, 1, algorithm)))
    assert sw == 0x9000
    return tlv.decode_map(tlv.decode_single(data, 0x7F49))


@pytest.fixture
def rsa_card(card: Card) -> tuple[Card, rsa.RSAPublicKey]:
    card.authenticate()
    parts = generate(card, Slot.PIV_AUTHENTICATION, Algorithm.RSA2048)
    public = rsa.RSAPublicNumbers(
        int.from_bytes(parts[0x82], "big"), int.from_bytes(parts[0x81], "big")
    )
    return card, public.public_key()


@pytest.fixture
def ec_card(card: Card) -> tuple[Card, ec.EllipticCurvePublicKey]:
    card.authenticate()
    point = generate(card, Slot.DIGITAL_SIGNATURE, Algorithm.ECC_P256)[0x86]
    return card, ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)


def test_generate_rsa_2048_answers_modulus_and_exponent_through_get_response(card: Card) -> None:
    card.authenticate()
    first = card.send("0047009A05AC03800107")
    assert first[:5] == h("7F49820109")
    assert first[-2:] == h("610E")  # 270 bytes: 256 now, 14 waiting
    parts = generate(card, Slot.PIV_AUTHENTICATION, Algorithm.RSA2048)
    assert len(parts[0x81]) == 256
    assert parts[0x82] == h("010001")
    assert card.state.key_algorithm(Slot.PIV_AUTHENTICATION) is Algorithm.RSA2048


def test_generate_p256_answers_the_point(card: Card) -> None:
    card.authenticate()
    answer = card.send("0047009C05AC03800111")
    assert answer[:5] == h("7F49438641")
    assert answer[5] == 0x04
    assert answer[-2:] == h("9000")


def test_generate_needs_the_management_key(card: Card) -> None:
    assert card.send("0047009A05AC03800107") == h("6982")
    assert card.state.keys == ()


@pytest.mark.parametrize("algorithm", ["06", "14", "03", "FF"])
def test_generate_refuses_other_algorithms(card: Card, algorithm: str) -> None:
    card.authenticate()
    assert card.send("0047009A05AC038001" + algorithm) == h("6A80")


def test_generate_refuses_9b_and_unknown_slots(card: Card) -> None:
    card.authenticate()
    assert card.send("0047009B05AC03800107") == h("6A86")
    assert card.send("0047009905AC03800107") == h("6A86")


def test_yubikey_policy_tags_are_accepted(card: Card) -> None:
    card.authenticate()
    assert card.send("0047009C0BAC09800111AA0101AB0101")[-2:] == h("9000")


def test_rsa_2048_signature_needs_the_pin_and_verifies(
    rsa_card: tuple[Card, rsa.RSAPublicKey],
) -> None:
    card, public = rsa_card
    block = pkcs1_block(b"hello")
    assert (
        general_authenticate(card, Algorithm.RSA2048, Slot.PIV_AUTHENTICATION, block)[1] == 0x6982
    )
    card.send(verify_apdu())
    signature, sw = general_authenticate(card, Algorithm.RSA2048, Slot.PIV_AUTHENTICATION, block)
    assert sw == 0x9000
    public.verify(signature, b"hello", padding.PKCS1v15(), hashes.SHA256())
    signature_again, _ = general_authenticate(
        card, Algorithm.RSA2048, Slot.PIV_AUTHENTICATION, block
    )
    assert signature_again == signature


def test_rsa_signature_response_of_264_bytes_comes_with_61xx(
    rsa_card: tuple[Card, rsa.RSAPublicKey],
) -> None:
    card, _ = rsa_card
    card.send(verify_apdu())
    *chained, last = sign_apdus(Algorithm.RSA2048, Slot.PIV_AUTHENTICATION, pkcs1_block(b"x"))
    for apdu in chained:
        card.send(apdu)
    first = card.send(last)
    assert first[:4] == h("7C820104")
    assert len(first) == 258
    assert first[-2:] == h("6108")
    assert len(card.send("00C0000008")) == 10


def test_a_pss_block_encoded_by_the_client_is_signed_raw(
    rsa_card: tuple[Card, rsa.RSAPublicKey],
) -> None:
    card, public = rsa_card
    card.send(verify_apdu())
    digest = hashlib.sha256(b"pss").digest()
    block = _pss_encode(digest, public.key_size)
    signature, sw = general_authenticate(card, Algorithm.RSA2048, Slot.PIV_AUTHENTICATION, block)
    assert sw == 0x9000
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    public.verify(signature, digest, pss, utils.Prehashed(hashes.SHA256()))


def _pss_encode(digest: bytes, bits: int) -> bytes:
    """EMSA-PSS-ENCODE (RFC 8017 §9.1.1), SHA-256, fixed salt: what OpenSC does in software."""
    size = (bits - 1 + 7) // 8
    salt = bytes(range(32))
    h_value = hashlib.sha256(b"\x00" * 8 + digest + salt).digest()
    db = b"\x00" * (size - 32 - 32 - 2) + b"\x01" + salt
    mask = b""
    counter = 0
    while len(mask) < len(db):
        mask += hashlib.sha256(h_value + counter.to_bytes(4, "big")).digest()
        counter += 1
    masked = bytes(a ^ b for a, b in zip(db, mask, strict=False))
    masked = bytes((masked[0] & (0xFF >> (8 * size - (bits - 1))),)) + masked[1:]
    return (masked + h_value + b"\xbc").rjust(bits // 8, b"\x00")


def test_rsa_block_of_the_wrong_size_is_refused(rsa_card: tuple[Card, rsa.RSAPublicKey]) -> None:
    card, _ = rsa_card
    card.send(verify_apdu())
    assert (
        general_authenticate(card, Algorithm.RSA2048, Slot.PIV_AUTHENTICATION, bytes(255))[1]
        == 0x6A80
    )


def test_algorithm_must_match_the_key_and_the_slot_must_hold_one(
    rsa_card: tuple[Card, rsa.RSAPublicKey],
) -> None:
    card, _ = rsa_card
    card.send(verify_apdu())
    assert (
        general_authenticate(card, Algorithm.RSA3072, Slot.PIV_AUTHENTICATION, bytes(384))[1]
        == 0x6A86
    )
    assert (
        general_authenticate(card, Algorithm.RSA2048, Slot.KEY_MANAGEMENT, bytes(256))[1] == 0x6A88
    )


def test_9c_needs_a_verify_before_every_signature(
    ec_card: tuple[Card, ec.EllipticCurvePublicKey],
) -> None:
    card, public = ec_card
    digest = hashlib.sha256(b"document").digest()
    card.send(verify_apdu())
    signature, sw = general_authenticate(card, Algorithm.ECC_P256, Slot.DIGITAL_SIGNATURE, digest)
    assert sw == 0x9000
    public.verify(signature, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    assert (
        general_authenticate(card, Algorithm.ECC_P256, Slot.DIGITAL_SIGNATURE, digest)[1] == 0x6982
    )
    card.send(verify_apdu())
    assert (
        general_authenticate(card, Algorithm.ECC_P256, Slot.DIGITAL_SIGNATURE, digest)[1] == 0x9000
    )
    assert card.ports.used == [("sign", Slot.DIGITAL_SIGNATURE)] * 2


def test_a_short_hash_is_signed_as_its_integer_value(
    ec_card: tuple[Card, ec.EllipticCurvePublicKey],
) -> None:
    card, public = ec_card
    card.send(verify_apdu())
    sha1 = hashlib.sha1(b"legacy").digest()  # noqa: S324 -- what an old client sends
    signature, sw = general_authenticate(card, Algorithm.ECC_P256, Slot.DIGITAL_SIGNATURE, sha1)
    assert sw == 0x9000
    public.verify(signature, sha1.rjust(32, b"\x00"), ec.ECDSA(utils.Prehashed(hashes.SHA256())))


def test_card_authentication_key_needs_no_pin(card: Card) -> None:
    card.install_key(Slot.CARD_AUTHENTICATION, Algorithm.ECC_P256)
    _, sw = general_authenticate(card, Algorithm.ECC_P256, Slot.CARD_AUTHENTICATION, bytes(32))
    assert sw == 0x9000


def test_9d_rsa_decrypts_a_block_for_the_client_to_unpad(card: Card) -> None:
    card.install_key(Slot.KEY_MANAGEMENT, Algorithm.RSA2048)
    public = card.ports.keys[Slot.KEY_MANAGEMENT].public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    ciphertext = public.encrypt(b"session key", padding.PKCS1v15())
    card.send(verify_apdu())
    block, sw = general_authenticate(card, Algorithm.RSA2048, Slot.KEY_MANAGEMENT, ciphertext)
    assert sw == 0x9000
    assert block[:2] == h("0002")
    assert block.endswith(b"\x00session key")
    assert card.ports.used == [("decrypt", Slot.KEY_MANAGEMENT)]


def test_9d_ecdh_with_tag_85(card: Card) -> None:
    card.install_key(Slot.KEY_MANAGEMENT, Algorithm.ECC_P256)
    peer = ec.generate_private_key(ec.SECP256R1())
    from cryptography.hazmat.primitives import serialization

    point = peer.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    card.send(verify_apdu())
    body = tlv.encode(0x7C, tlv.encode(0x82, b"") + tlv.encode(0x85, point))
    answer, sw = card.transmit(h("0087119D") + bytes((len(body),)) + body)
    assert sw == 0x9000
    secret = tlv.decode_map(tlv.decode_single(answer, 0x7C))[0x82]
    card_public = card.ports.keys[Slot.KEY_MANAGEMENT].public_key()
    assert isinstance(card_public, ec.EllipticCurvePublicKey)
    assert secret == peer.exchange(ec.ECDH(), card_public)


def test_ecdh_refuses_a_point_that_is_not_uncompressed(card: Card) -> None:
    card.install_key(Slot.KEY_MANAGEMENT, Algorithm.ECC_P256)
    card.send(verify_apdu())
    body = tlv.encode(0x7C, tlv.encode(0x82, b"") + tlv.encode(0x85, b"\x02" + bytes(32)))
    assert card.send(h("0087119D") + bytes((len(body),)) + body) == h("6A80")


@pytest.mark.parametrize("template", ["7C028200", "7C0482008100", "7C06820081008500", "7D00"])
def test_malformed_templates_are_refused(card: Card, template: str) -> None:
    card.install_key(Slot.CARD_AUTHENTICATION, Algorithm.ECC_P256)
    data = h(template)
    assert card.send(h("0087119E") + bytes((len(data),)) + data) == h("6A80")


def test_rsa_block_not_below_the_modulus_is_refused(
    rsa_card: tuple[Card, rsa.RSAPublicKey],
) -> None:
    card, _ = rsa_card
    card.send(verify_apdu())
    assert (
        general_authenticate(card, Algorithm.RSA2048, Slot.PIV_AUTHENTICATION, b"\xff" * 256)[1]
        == 0x6A80
    )
