"""Reading the key a card generated, from its CSR or its PEM public key (issue 17): the
CSR's signature proves the card holds the key, and anything else is refused precisely."""

from __future__ import annotations

from functools import cache

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from cardvault.crypto.csr import load_card_public_key
from cardvault.crypto.keys import UnsupportedKey
from cardvault.errors import InvalidInput


@cache
def card_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def csr_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Hana Holder")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM)


def public_pem(key: object) -> bytes:
    assert isinstance(
        key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    )
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_load_card_public_key_from_a_csr_gives_the_signing_key() -> None:
    assert load_card_public_key(csr_pem=csr_pem(card_key())) == card_key().public_key()


def test_load_card_public_key_from_a_pem_public_key() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    assert load_card_public_key(key_pem=public_pem(key)) == key.public_key()


@pytest.mark.parametrize("given", [{}, {"csr_pem": b"x", "key_pem": b"y"}])
def test_load_card_public_key_wants_exactly_one_source(given: dict[str, bytes]) -> None:
    with pytest.raises(InvalidInput, match="request or its public key, not both"):
        load_card_public_key(**given)


def test_load_card_public_key_refuses_a_csr_whose_signature_does_not_verify() -> None:
    pem = csr_pem(card_key())
    der = x509.load_pem_x509_csr(pem).public_bytes(serialization.Encoding.DER)
    broken = der[:-5] + bytes([der[-5] ^ 0xFF]) + der[-4:]
    bad = x509.load_der_x509_csr(broken).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(InvalidInput, match="signature does not verify") as err:
        load_card_public_key(csr_pem=bad)
    assert err.value.field == "csr"


@pytest.mark.parametrize("source", ["csr_pem", "key_pem"])
def test_load_card_public_key_refuses_what_is_not_pem(source: str) -> None:
    with pytest.raises(InvalidInput, match="not a PEM certificate request or public key") as err:
        load_card_public_key(**{source: b"-----BEGIN NOTHING-----\n"})
    assert err.value.field == "csr"


def test_load_card_public_key_refuses_a_key_kind_cards_do_not_hold() -> None:
    with pytest.raises(UnsupportedKey, match="Card keys must be RSA or ECDSA keys"):
        load_card_public_key(key_pem=public_pem(ed25519.Ed25519PrivateKey.generate()))
