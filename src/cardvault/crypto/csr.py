"""Reading back the certificate requests cardvault exported."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from cardvault.errors import IntegrityError


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
