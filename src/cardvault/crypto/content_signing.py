"""The CA's PIV content signer and the signed CHUID (NIST SP 800-73-4 Part 1 §3.1.2,
FIPS 201-3 §4.2.1).

A PIV card's CHUID carries an *issuer asymmetric signature* (tag ``3E``): a CMS SignedData
(RFC 5652) over the CHUID's other fields, made by a content-signing certificate of the issuing
PKI (extended key usage id-PIV-content-signing). Relying software checks it against the CA
certificate. The content signer is a P-256 key certified by the card CA for that one purpose.

As SP 800-73-4 describes it: ``eContentType`` id-PIV-CHUIDSecurityObject with the content
omitted (detached: the CHUID's fields before ``3E`` are the content), the signer's certificate
in ``certificates``, the signer identified by issuer and serial number, and signed attributes
content type, message digest (SHA-256) and pivSigner-DN (the signer's subject); ECDSA with
SHA-256. The structure is built with asn1crypto and signed with ``cryptography``; it verifies
with ``openssl cms -verify -binary -content``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from asn1crypto import algos, cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cardvault.crypto.profile import key_usage
from cardvault.crypto.x509 import (
    CaKey,
    PrivateKey,
    authority_key_identifier,
    new_serial_number,
    sign_as_ca,
)

__all__ = [
    "CHUID_SECURITY_OBJECT",
    "CONTENT_SIGNING",
    "PIV_SIGNER_DN",
    "issue_content_signer",
    "sign_chuid",
]

#: id-PIV-content-signing (FIPS 201 / SP 800-78), the content signer's extended key usage
CONTENT_SIGNING = x509.ObjectIdentifier("2.16.840.1.101.3.6.7")
#: id-PIV-CHUIDSecurityObject: the eContentType of the CHUID's signature
CHUID_SECURITY_OBJECT = "2.16.840.1.101.3.6.1"
#: pivSigner-DN: the signed attribute naming the signer (its certificate's subject)
PIV_SIGNER_DN = "2.16.840.1.101.3.6.5"
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
    signer = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    digest = hashes.Hash(hashes.SHA256())
    digest.update(content)
    attributes = cms.CMSAttributes(
        [
            cms.CMSAttribute({"type": "content_type", "values": [CHUID_SECURITY_OBJECT]}),
            cms.CMSAttribute({"type": "message_digest", "values": [digest.finalize()]}),
            cms.CMSAttribute({"type": PIV_SIGNER_DN, "values": [signer.subject]}),
        ]
    )
    # RFC 5652 §5.4: the signature covers the attributes' DER with the SET OF tag
    signature = key.sign(attributes.dump(), ec.ECDSA(hashes.SHA256()))
    signer_info = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                {
                    "issuer_and_serial_number": cms.IssuerAndSerialNumber(
                        {"issuer": signer.issuer, "serial_number": signer.serial_number}
                    )
                }
            ),
            "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
            "signed_attrs": attributes,
            "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"}),
            "signature": signature,
        }
    )
    signed = cms.SignedData(
        {
            "version": "v3",  # RFC 5652 §5.1: eContentType other than id-data
            "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
            "encap_content_info": {"content_type": CHUID_SECURITY_OBJECT},
            "certificates": [signer],
            "signer_infos": [signer_info],
        }
    )
    return bytes(cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump())
