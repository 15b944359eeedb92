"""The applet image of a card the service issued: what a card management system would have
written onto a blank card, from the card's certificates."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from cardvault.card import tlv
from cardvault.card.piv import Algorithm, ObjectId, Slot
from cardvault.card.piv import objects as piv_objects
from cardvault.crypto.profile import CertUsage
from cardvault.services.piv.errors import NotReadyForReaders
from cardvault.services.piv.image import (
    IssuedCertificate,
    build_image,
    piv_serial,
    with_certificates,
)

CARD_ID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


def _certificate(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, days: int
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Hana Holder")])
    now = datetime(2027, 1, 1, tzinfo=UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )


def _issued(usage: CertUsage, cert: x509.Certificate) -> IssuedCertificate:
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    return IssuedCertificate(usage=usage, pem=pem, not_after=cert.not_valid_after_utc)


@pytest.fixture(scope="module")
def certificates() -> dict[CertUsage, x509.Certificate]:
    return {
        CertUsage.AUTHENTICATION: _certificate(rsa.generate_private_key(65537, 2048), 1095),
        CertUsage.CONTENT_COMMITMENT: _certificate(ec.generate_private_key(ec.SECP256R1()), 400),
    }


def test_the_image_holds_both_certificates_and_their_key_slots(
    certificates: dict[CertUsage, x509.Certificate],
) -> None:
    issued = {usage: _issued(usage, cert) for usage, cert in certificates.items()}
    state = build_image(card_id=CARD_ID, serial="CVA1B2C3D4E5", certificates=issued)
    assert dict(state.keys) == {
        Slot.PIV_AUTHENTICATION: Algorithm.RSA2048,
        Slot.DIGITAL_SIGNATURE: Algorithm.ECC_P256,
    }
    for usage, tag in (
        (CertUsage.AUTHENTICATION, ObjectId.CERT_PIV_AUTHENTICATION),
        (CertUsage.CONTENT_COMMITMENT, ObjectId.CERT_DIGITAL_SIGNATURE),
    ):
        container = state.object(tag)
        assert container is not None
        der = certificates[usage].public_bytes(serialization.Encoding.DER)
        assert piv_objects.certificate(container) == der


def test_the_chuid_names_the_card_and_ends_with_its_first_certificate(
    certificates: dict[CertUsage, x509.Certificate],
) -> None:
    issued = {usage: _issued(usage, cert) for usage, cert in certificates.items()}
    state = build_image(card_id=CARD_ID, serial="CVA1B2C3D4E5", certificates=issued)
    chuid = state.object(ObjectId.CHUID)
    assert chuid is not None
    items = tlv.decode_map(chuid)
    assert items[0x34] == uuid.UUID(CARD_ID).bytes
    assert items[0x34].hex() == "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
    assert items[0x35] == b"20280205"  # 2027-01-01 + 400 days: the 9C certificate's end
    ccc = state.object(ObjectId.CARD_CAPABILITY_CONTAINER)
    assert ccc is not None
    assert tlv.decode_map(ccc)[0xF0] == bytes.fromhex("A0000001160000") + items[0x34][:14]


def test_the_image_has_no_management_key_and_no_puk(
    certificates: dict[CertUsage, x509.Certificate],
) -> None:
    issued = {usage: _issued(usage, cert) for usage, cert in certificates.items()}
    state = build_image(card_id=CARD_ID, serial="CVA1B2C3D4E5", certificates=issued)
    assert not state.management_key_default
    assert state.puk_tries.blocked
    assert state.pin_tries.left == 3
    assert state.serial == piv_serial("CVA1B2C3D4E5")


def test_a_missing_certificate_is_said_and_nothing_is_built(
    certificates: dict[CertUsage, x509.Certificate],
) -> None:
    only = {
        CertUsage.AUTHENTICATION: _issued(
            CertUsage.AUTHENTICATION, certificates[CertUsage.AUTHENTICATION]
        )
    }
    with pytest.raises(NotReadyForReaders, match="content-commitment certificate"):
        build_image(card_id=CARD_ID, serial="CVA1B2C3D4E5", certificates=only)


def test_renewed_certificates_replace_the_old_ones(
    certificates: dict[CertUsage, x509.Certificate],
) -> None:
    issued = {usage: _issued(usage, cert) for usage, cert in certificates.items()}
    state = build_image(card_id=CARD_ID, serial="CVA1B2C3D4E5", certificates=issued)
    renewed = _certificate(rsa.generate_private_key(65537, 2048), 1095)
    issued[CertUsage.CONTENT_COMMITMENT] = _issued(CertUsage.CONTENT_COMMITMENT, renewed)
    after = with_certificates(
        state, card_id=CARD_ID, serial="CVA1B2C3D4E5", certificates=issued, sign=_signer
    )
    assert after.key_algorithm(Slot.DIGITAL_SIGNATURE) is Algorithm.RSA2048
    container = after.object(ObjectId.CERT_DIGITAL_SIGNATURE)
    assert container is not None
    assert piv_objects.certificate(container) == renewed.public_bytes(serialization.Encoding.DER)
    chuid = after.object(ObjectId.CHUID)
    assert chuid is not None
    assert tlv.decode_map(chuid)[0x35] == b"20291231"  # the card's new end: both last 1095 days
    content = piv_objects.chuid_signed_content(guid=uuid.UUID(CARD_ID).bytes, expiry="20291231")
    assert tlv.decode_map(chuid)[0x3E] == b"signed " + content  # signed again


def _signer(content: bytes) -> bytes:
    return b"signed " + content


def test_an_unchanged_chuid_is_not_signed_again(
    certificates: dict[CertUsage, x509.Certificate],
) -> None:
    issued = {usage: _issued(usage, cert) for usage, cert in certificates.items()}
    state = build_image(card_id=CARD_ID, serial="CVA1B2C3D4E5", certificates=issued, sign=_signer)

    def refuse(content: bytes) -> bytes:
        raise AssertionError("signed again")

    again = with_certificates(
        state, card_id=CARD_ID, serial="CVA1B2C3D4E5", certificates=issued, sign=refuse
    )
    assert again == state


def test_a_key_management_certificate_goes_into_9d(
    certificates: dict[CertUsage, x509.Certificate],
) -> None:
    issued = {usage: _issued(usage, cert) for usage, cert in certificates.items()}
    encryption = _certificate(rsa.generate_private_key(65537, 2048), 1095)
    issued[CertUsage.KEY_MANAGEMENT] = _issued(CertUsage.KEY_MANAGEMENT, encryption)
    state = build_image(card_id=CARD_ID, serial="CVA1B2C3D4E5", certificates=issued)
    assert state.key_algorithm(Slot.KEY_MANAGEMENT) is Algorithm.RSA2048
    container = state.object(ObjectId.CERT_KEY_MANAGEMENT)
    assert container is not None
    assert piv_objects.certificate(container) == encryption.public_bytes(serialization.Encoding.DER)


def test_the_piv_serial_is_derived_from_the_card_serial() -> None:
    assert piv_serial("CVA1B2C3D4E5") == piv_serial("CVA1B2C3D4E5")
    assert piv_serial("CVA1B2C3D4E5") != piv_serial("CVA1B2C3D4E6")
    assert 10_000_000 <= piv_serial("CVA1B2C3D4E5") < 100_000_000
    assert piv_serial("CVA1B2C3D4E5") == 98_544_710  # 1e7 + sha256(label, 0, serial)[:8] mod 9e7
