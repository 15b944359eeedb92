"""A certificate an external CA returns for a card key (DESIGN §3.9): accepted only when
it is that key's, current, fit for its purpose, signed with SHA-256 or better and, when
the CA is configured, issued by it. What a CA of ours makes is in :mod:`cardvault.crypto.x509`.
"""

from __future__ import annotations

from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID

from cardvault.crypto import x509 as cx509
from cardvault.crypto.cert_errors import (
    CertificateKeyMismatch,
    CertificateWeakSignature,
    CertificateWrongUsage,
)
from cardvault.crypto.profile import MICROSOFT_SMARTCARD_LOGON, CertUsage


def check_imported_certificate(
    cert_pem: bytes,
    *,
    expected_public_key: cx509.PublicKeyInput,
    usage: CertUsage,
    ca_cert: x509.Certificate | None,
    now: datetime,
) -> x509.Certificate:
    """Accept a certificate for a card key only if it is that key's, current, fit for purpose,
    signed with SHA-256 or better and, when ``ca_cert`` is given, issued by that CA."""
    cert = cx509.load_certificate_pem(cert_pem)
    if cx509.spki_der(cert.public_key()) != cx509.spki_der(
        cx509.public_key_of(expected_public_key)
    ):
        raise CertificateKeyMismatch(
            f"This certificate is for a different key: it does not match the card's "
            f"{usage.label} key.",
            usage=usage.value,
        )
    cx509.check_validity(cert, cx509.as_utc(now), what="The certificate")
    _check_imported_usage(cert, usage)
    _check_signature_hash(cert)
    if ca_cert is not None:
        cx509.check_issued_by(cert, ca_cert)
    return cert


def _check_imported_usage(cert: x509.Certificate, usage: CertUsage) -> None:
    constraints = cx509.extension_value(cert, x509.BasicConstraints)
    key_usage = cx509.extension_value(cert, x509.KeyUsage)
    if (constraints is not None and constraints.ca) or (key_usage and key_usage.key_cert_sign):
        raise CertificateWrongUsage(
            "This is a CA certificate, not a card certificate.", usage=usage.value
        )
    if usage is CertUsage.AUTHENTICATION:
        needed, bit = "digitalSignature", key_usage is not None and key_usage.digital_signature
    elif usage is CertUsage.KEY_MANAGEMENT:
        needed = "keyEncipherment or keyAgreement"
        bit = key_usage is not None and (key_usage.key_encipherment or key_usage.key_agreement)
    else:
        needed, bit = "nonRepudiation", key_usage is not None and key_usage.content_commitment
    if not bit:
        raise CertificateWrongUsage(
            f"The certificate's key usage lacks {needed}, which a {usage.label} certificate needs.",
            usage=usage.value,
        )
    purposes = cx509.extension_value(cert, x509.ExtendedKeyUsage)
    allowed = {
        ExtendedKeyUsageOID.CLIENT_AUTH,
        MICROSOFT_SMARTCARD_LOGON,
        ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
    }
    if usage is CertUsage.AUTHENTICATION and purposes is not None and not allowed & set(purposes):
        raise CertificateWrongUsage(
            "The certificate's extended key usage allows neither client authentication "
            "nor smartcard logon, which an authentication certificate needs.",
            usage=usage.value,
        )


def _check_signature_hash(cert: x509.Certificate) -> None:
    algorithm = cert.signature_hash_algorithm
    if isinstance(algorithm, hashes.MD5 | hashes.SHA1 | hashes.SHA224):
        raise CertificateWeakSignature(
            f"The certificate is signed with {algorithm.name.upper()}; SHA-256 or better "
            "is required."
        )
