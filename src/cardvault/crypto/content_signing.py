"""The CA's PIV content signer and the signed CHUID (NIST SP 800-73-4 Part 1 §3.1.2,
FIPS 201-3 §4.2.1).

A PIV card's CHUID carries an *issuer asymmetric signature* (tag ``3E``): a CMS SignedData
over the CHUID's other fields, made by a content-signing certificate of the issuing PKI
(extended key usage id-PIV-content-signing). Relying software checks it against the CA
certificate. The content signer is a P-256 key certified by the card CA for that one purpose.

Departure from SP 800-73-4, said here and in the docs: the SignedData is made with the
standard CMS builder, so its ``eContentType`` is ``id-data`` rather than
id-PIV-CHUIDSecurityObject and it has no pivSigner-DN attribute; it is detached, carries the
signer's certificate, and verifies with ``openssl cms -verify -content``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from cardvault.crypto.profile import key_usage
from cardvault.crypto.x509 import (
    CaKey,
    PrivateKey,
    authority_key_identifier,
    new_serial_number,
    sign_as_ca,
)

__all__ = ["CONTENT_SIGNING", "issue_content_signer", "sign_chuid"]

#: id-PIV-content-signing (FIPS 201 / SP 800-78), the content signer's extended key usage
CONTENT_SIGNING = x509.ObjectIdentifier("2.16.840.1.101.3.6.7")
_VALIDITY = timedelta(days=3 * 365)


def issue_content_signer(
    *, ca_key: CaKey, ca_cert: x509.Certificate, now: datetime
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A new P-256 content-signing key and its certificate from the CA (never outliving it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    common = ca_cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = common[0].value if common else "cardvault"
    ca_name = value.decode(errors="replace") if isinstance(value, bytes) else value
    name = f"{ca_name} PIV content signer"
    end = min(now + _VALIDITY, ca_cert.not_valid_after_utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, str(name)[:64])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(new_serial_number())
        .not_valid_before(now)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([CONTENT_SIGNING]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(authority_key_identifier(ca_cert), critical=False)
    )
    return key, sign_as_ca(builder, ca_key)


def sign_chuid(content: bytes, *, key: PrivateKey, cert: x509.Certificate) -> bytes:
    """The CHUID's issuer signature: a detached CMS SignedData (DER) over ``content`` -- the
    CHUID's fields before tag ``3E`` -- with the signer's certificate included."""
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TypeError("the content signer is a P-256 key")
    return (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(content)
        .add_signer(cert, key, hashes.SHA256())
        .sign(
            serialization.Encoding.DER,
            [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.NoCapabilities],
        )
    )
