"""The card certificate profile (DESIGN §3.9): which extensions each certificate carries.

The authentication certificate is what a Windows domain controller accepts for smart-card
logon: digitalSignature (+ keyEncipherment for RSA), EKU clientAuth + Microsoft smart card
logon, a subject alternative name with the holder's email and, when the card has an AD
association, the UPN as an otherName; with a SID from the RA, the AD "strong certificate
mapping" extension (KB5014754) as well. The content-commitment certificate is for signatures
that commit the holder: nonRepudiation + digitalSignature, emailProtection when there is an
address. Both point relying parties at the CRL, the OCSP responder and the CA certificate,
and carry the operator's certificate policy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeAlias

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import (
    AuthorityInformationAccessOID,
    ExtendedKeyUsageOID,
    ObjectIdentifier,
)

from cardvault.errors import InvalidInput

PublicKey: TypeAlias = rsa.RSAPublicKey | ec.EllipticCurvePublicKey

MICROSOFT_SMARTCARD_LOGON = ExtendedKeyUsageOID.SMARTCARD_LOGON  # 1.3.6.1.4.1.311.20.2.2
#: szOID_NT_PRINCIPAL_NAME: the UPN as a subjectAltName otherName
UPN_OID = ObjectIdentifier("1.3.6.1.4.1.311.20.2.3")
#: szOID_NTDS_CA_SECURITY_EXT: the account's SID, for AD strong certificate mapping
SID_EXTENSION_OID = ObjectIdentifier("1.3.6.1.4.1.311.25.2")
#: szOID_NTDS_OBJECTSID: the otherName inside that extension
SID_OTHERNAME_OID = ObjectIdentifier("1.3.6.1.4.1.311.25.2.1")
ANY_POLICY = "2.5.29.32.0"
_SID = re.compile(r"S-1-[0-9]{1,13}(-[0-9]{1,10}){1,15}")
_OID = re.compile(r"[0-2](\.(0|[1-9][0-9]{0,18})){1,30}")
_MAX_UPN = 256


class CertUsage(StrEnum):
    """What a card certificate is for; the same names as the card's key roles."""

    AUTHENTICATION = "authentication"
    CONTENT_COMMITMENT = "content_commitment"
    #: the optional key-management (encryption) key, PIV slot 9D (organisation policy)
    KEY_MANAGEMENT = "key_management"

    @property
    def label(self) -> str:
        return self.value.replace("_", "-")


@dataclass(frozen=True, kw_only=True)
class PkiLinks:
    """Where relying parties find the CRL, the OCSP responder and the CA certificate."""

    crl_url: str
    ocsp_url: str
    ca_issuers_url: str


@dataclass(frozen=True, kw_only=True)
class CertProfile:
    """The holder-specific and operator-configured parts of a card certificate.

    ``upn`` and ``sid`` go only into the authentication certificate; ``policy_oid`` and
    ``links`` only into certificates this service's CA issues (a CSR for an external CA
    leaves them to that CA)."""

    email: str | None = None
    upn: str | None = None
    sid: str | None = None
    policy_oid: str | None = None
    links: PkiLinks | None = None

    def __post_init__(self) -> None:
        if self.email is not None:
            check_email(self.email)
        if self.upn is not None:
            check_upn(self.upn)
        if self.sid is not None:
            check_sid(self.sid)
        if self.policy_oid is not None:
            check_policy_oid(self.policy_oid)


_KEY_USAGE_BITS = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)


def key_usage(**bits: bool) -> x509.KeyUsage:
    """A KeyUsage with the named bits set and every other bit clear."""
    return x509.KeyUsage(**{name: bits.get(name, False) for name in _KEY_USAGE_BITS})


def usage_extensions(
    usage: CertUsage, key: PublicKey, profile: CertProfile
) -> list[tuple[x509.ExtensionType, bool]]:
    """The extensions (and whether each is critical) of one card certificate or CSR."""
    names: list[x509.GeneralName] = []
    if profile.email:
        names.append(x509.RFC822Name(profile.email))
    if usage is CertUsage.AUTHENTICATION:
        ku = key_usage(digital_signature=True, key_encipherment=isinstance(key, rsa.RSAPublicKey))
        purposes = [ExtendedKeyUsageOID.CLIENT_AUTH, MICROSOFT_SMARTCARD_LOGON]
        if profile.upn:
            names.append(x509.OtherName(UPN_OID, _utf8_string(profile.upn)))
    elif usage is CertUsage.KEY_MANAGEMENT:
        # RSA keys decrypt the content-encryption key; EC keys agree one (RFC 5753 ECDH)
        rsa_key = isinstance(key, rsa.RSAPublicKey)
        ku = key_usage(key_encipherment=rsa_key, key_agreement=not rsa_key)
        purposes = [ExtendedKeyUsageOID.EMAIL_PROTECTION]
    else:
        ku = key_usage(digital_signature=True, content_commitment=True)
        # No EKU means "any purpose" to document signers; with an address, S/MIME needs it.
        purposes = [ExtendedKeyUsageOID.EMAIL_PROTECTION] if profile.email else []
    extensions: list[tuple[x509.ExtensionType, bool]] = [(ku, True)]
    if purposes:
        extensions.append((x509.ExtendedKeyUsage(purposes), False))
    if names:
        extensions.append((x509.SubjectAlternativeName(names), False))
    if usage is CertUsage.AUTHENTICATION and profile.sid:
        extensions.append((sid_extension(profile.sid), False))
    if profile.policy_oid:
        policy = x509.PolicyInformation(ObjectIdentifier(profile.policy_oid), None)
        extensions.append((x509.CertificatePolicies([policy]), False))
    if profile.links is not None:
        extensions.extend(_link_extensions(profile.links))
    return extensions


def _link_extensions(links: PkiLinks) -> list[tuple[x509.ExtensionType, bool]]:
    crl = x509.DistributionPoint(
        full_name=[x509.UniformResourceIdentifier(links.crl_url)],
        relative_name=None,
        reasons=None,
        crl_issuer=None,
    )
    aia = x509.AuthorityInformationAccess(
        [
            x509.AccessDescription(
                AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(links.ocsp_url)
            ),
            x509.AccessDescription(
                AuthorityInformationAccessOID.CA_ISSUERS,
                x509.UniformResourceIdentifier(links.ca_issuers_url),
            ),
        ]
    )
    return [(x509.CRLDistributionPoints([crl]), False), (aia, False)]


def sid_extension(sid: str) -> x509.UnrecognizedExtension:
    """The AD security extension: GeneralNames { otherName objectSid [0] OCTET STRING sid }."""
    check_sid(sid)
    value = _der(0x04, sid.encode("ascii"))
    names = x509.SubjectAlternativeName([x509.OtherName(SID_OTHERNAME_OID, value)])
    return x509.UnrecognizedExtension(SID_EXTENSION_OID, names.public_bytes())


def upn_of(cert: x509.Certificate) -> str | None:
    """The UPN otherName in a certificate's subject alternative name, if it has one."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    for other in san.get_values_for_type(x509.OtherName):
        if other.type_id == UPN_OID and other.value[:1] == b"\x0c":
            return _der_content(other.value).decode("utf-8", "replace")
    return None


def check_email(email: str) -> None:
    local, at, domain = email.partition("@")
    if not (at and local and domain and email.isascii()) or any(c.isspace() for c in email):
        raise InvalidInput("The email address for the certificate is not a valid address.")


def check_upn(upn: str) -> None:
    local, at, domain = upn.partition("@")
    if (
        not (at and local and "." in domain)
        or len(upn) > _MAX_UPN
        or any(c.isspace() or c in "@" for c in local + domain)
    ):
        raise InvalidInput(
            "A user principal name looks like account@dns.domain (at most 256 characters).",
            field="upn",
        )


def check_sid(sid: str) -> None:
    if not isinstance(sid, str) or not _SID.fullmatch(sid):
        raise InvalidInput(
            "A Windows SID looks like S-1-5-21-1004336348-1177238915-682003330-512.",
            field="sid",
        )


def check_policy_oid(oid: str) -> None:
    if not _OID.fullmatch(oid):
        raise InvalidInput(
            "The certificate policy must be an object identifier such as 1.2.826.0.1.1234.1.",
            field="certificate_policy_oid",
        )


def _utf8_string(text: str) -> bytes:
    return _der(0x0C, text.encode("utf-8"))


def _der(tag: int, content: bytes) -> bytes:
    """One DER TLV (definite length); the only ASN.1 this module writes by hand."""
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    length = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def _der_content(tlv: bytes) -> bytes:
    first = tlv[1]
    if first < 0x80:
        return tlv[2 : 2 + first]
    size = first & 0x7F
    n = int.from_bytes(tlv[2 : 2 + size], "big")
    return tlv[2 + size : 2 + size + n]
