"""Reading certificate requests: the ones cardvault exported, and the ones a card signed."""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from cardvault.crypto.keys import PublicKey, UnsupportedKey
from cardvault.errors import IntegrityError, InvalidInput


def csr_public_key_der(pem: bytes) -> bytes:
    """The SubjectPublicKeyInfo of a stored CSR, after checking its self-signature."""
    try:
        csr = x509.load_pem_x509_csr(pem)
    except ValueError as exc:
        raise IntegrityError("A stored certificate request is damaged.") from exc
    if not csr.is_signature_valid:
        raise IntegrityError("A stored certificate request has an invalid signature.")
    return csr.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_card_public_key(
    *, csr_pem: bytes | None = None, key_pem: bytes | None = None
) -> PublicKey:
    """The key a card generated, from a CSR it signed (the signature must verify: it proves
    the card holds the private key) or from its PEM public key. Strength is the certificate
    builder's to judge; here only the kind of key is checked."""
    if (csr_pem is None) == (key_pem is None):
        raise InvalidInput("Give the card's certificate request or its public key, not both.")
    try:
        if csr_pem is not None:
            key = _from_csr(csr_pem)
        else:
            assert key_pem is not None
            key = serialization.load_pem_public_key(key_pem)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InvalidInput(
            "That is not a PEM certificate request or public key.", field="csr"
        ) from exc
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise UnsupportedKey("Card keys must be RSA or ECDSA keys.")
    return key


def _from_csr(pem: bytes) -> object:
    """The CSR's key, once its self-signature proves the requester holds it."""
    csr = x509.load_pem_x509_csr(pem)
    if not csr.is_signature_valid:
        raise InvalidInput(
            "The certificate request's signature does not verify: it was not signed "
            "by the key it asks to certify.",
            field="csr",
        )
    return csr.public_key()
