"""The built-in issuing CA and the card certificates (DESIGN §3.1).

Each card has two key pairs, and each gets its own certificate: an *authentication*
certificate (digitalSignature; clientAuth and Microsoft smartcard logon) and a
*content-commitment* certificate (nonRepudiation/contentCommitment + digitalSignature) — the
PIV 9A and 9C slots. Either the built-in CA issues them, or an external CA does: then the
service exports a CSR per key and checks each certificate the CA returns before it is stored.

The built-in CA uses RSA-3072 with SHA-256 PKCS#1 v1.5 signatures. RSA because every relying
party that accepts the RSA-2048 card keys (the default) is certain to verify RSA chains, while
ECDSA CA signatures are still refused by some smartcard-logon stacks and middleware; 3072 bits
because NIST SP 800-57 asks for 128-bit security for keys used beyond 2030, and the root lives
ten years. PSS is not used for the same compatibility reason.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from cardvault.crypto.cert_errors import (
    CaKeyMismatch,
    CaUnusable,
    CertificateError,
    CertificateExpired,
    CertificateNotYetValid,
    CertificateUnreadable,
    CertificateUntrustedIssuer,
)
from cardvault.crypto.cert_info import (
    CURVE_NAMES,
    certificate_summary,
    name_text,
    serial_hex,
)
from cardvault.crypto.external_key import ExternalKey, sign_certificate
from cardvault.crypto.keys import UnsupportedKey
from cardvault.crypto.profile import (
    CertProfile,
    CertUsage,
    PkiLinks,
    key_usage,
    usage_extensions,
)
from cardvault.crypto.subject import (
    DEFAULT_SUBJECT_TEMPLATE,
    SubjectFields,
    SubjectTemplateInvalid,
    SubjectValueInvalid,
    check_subject_template,
    render_subject,
)
from cardvault.errors import InvalidInput

__all__ = [
    "DEFAULT_SUBJECT_TEMPLATE",
    "CaKey",
    "CertProfile",
    "CertUsage",
    "Certificate",
    "PkiLinks",
    "SubjectFields",
    "SubjectTemplateInvalid",
    "SubjectValueInvalid",
    "authority_key_identifier",
    "build_csr",
    "ca_key_id",
    "ca_key_to_der",
    "ca_key_to_pem",
    "certificate_key",
    "certificate_public_key_der",
    "certificate_summary",
    "certificate_to_der",
    "certificate_to_pem",
    "check_ca_pair",
    "check_issued_by",
    "check_subject_template",
    "create_ca",
    "csr_to_pem",
    "in_memory",
    "issue_card_certificate",
    "load_ca",
    "load_certificate_der",
    "load_certificate_pem",
    "name_text",
    "new_serial_number",
    "render_subject",
    "self_signed_ca",
    "serial_hex",
    "sign_as_ca",
    "signature_hash",
    "verify_chain",
]

#: the parsed certificate, named here so that services need not import ``cryptography``
Certificate: TypeAlias = x509.Certificate
PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
#: what signs as the CA: a key in memory, or one in an HSM (``crypto.external_key``)
CaKey: TypeAlias = PrivateKey | ExternalKey
PublicKey: TypeAlias = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
#: a public key object, or its DER SubjectPublicKeyInfo as the store keeps it
PublicKeyInput: TypeAlias = PublicKey | bytes

CA_KEY_SIZE = 3072
MIN_RSA_BITS = 2048
#: not_before is set this far back so a relying party whose clock lags still accepts it
CLOCK_SKEW = timedelta(minutes=5)
_SERIAL_BITS = 159  # at most 20 DER octets as RFC 5280 §4.1.2.2 allows, always positive


# -- the CA ------------------------------------------------------------------------------


def create_ca(
    *, common_name: str, organisation: str | None, validity_days: int = 3650, now: datetime
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A new RSA-3072 key and its self-signed root (see :func:`self_signed_ca`)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=CA_KEY_SIZE)
    cert = self_signed_ca(
        key,
        common_name=common_name,
        organisation=organisation,
        validity_days=validity_days,
        now=now,
    )
    return key, cert


def self_signed_ca(
    key: CaKey,
    *,
    common_name: str,
    organisation: str | None,
    validity_days: int = 3650,
    now: datetime,
) -> x509.Certificate:
    """A self-signed root for ``key`` that may issue end-entity certificates only (pathlen
    0); ``key`` may be in memory or in an HSM."""
    start = as_utc(now)
    fields = SubjectFields(
        common_name=common_name,
        user_id="-",
        organisation_name=organisation or "-",
        organisation_code="-",
    )
    template = "CN={common_name},O={organisation_name}" if organisation else "CN={common_name}"
    name = render_subject(template, fields)
    public = key.public_key()
    _check_key_strength(public)
    ski = x509.SubjectKeyIdentifier.from_public_key(public)
    builder = (
        _validity(x509.CertificateBuilder(), start, start + timedelta(days=validity_days))
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(new_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), False)
    )
    return sign_as_ca(builder, key)


def sign_as_ca(builder: x509.CertificateBuilder, key: CaKey) -> x509.Certificate:
    """Sign a certificate with the CA key, in memory or in an HSM alike."""
    if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        return builder.sign(key, signature_hash(key))
    return sign_certificate(builder, key, signature_hash(key))


def check_ca_pair(ca_key: CaKey, ca_cert: x509.Certificate) -> None:
    """Raise CaKeyMismatch unless the certificate is a CA certificate for this very key."""
    if spki_der(ca_key.public_key()) != spki_der(ca_cert.public_key()):
        raise CaKeyMismatch("The CA certificate does not match its key.")
    constraints = extension_value(ca_cert, x509.BasicConstraints)
    usage = extension_value(ca_cert, x509.KeyUsage)
    if constraints is None or not constraints.ca or usage is None or not usage.key_cert_sign:
        raise CaUnusable(
            "The CA certificate is not a CA certificate "
            "(it needs basicConstraints CA:TRUE and keyCertSign)."
        )


def load_ca(
    key_pem: bytes | bytearray, cert_pem: bytes, *, password: bytes | None = None
) -> tuple[PrivateKey, x509.Certificate]:
    """Load a CA key and certificate (built-in or imported) and check they belong together."""
    try:
        key = serialization.load_pem_private_key(bytes(key_pem), password=password)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InvalidInput("The CA key is not a readable PEM private key.") from exc
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise UnsupportedKey("The CA key must be an RSA or ECDSA key.")
    _check_key_strength(key.public_key())
    cert = load_certificate_pem(cert_pem)
    check_ca_pair(key, cert)
    return key, cert


def ca_key_to_pem(key: PrivateKey) -> bytearray:
    """Unencrypted PKCS#8 PEM for the caller to seal under the master key, then wipe."""
    return bytearray(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def in_memory(key: CaKey) -> PrivateKey | None:
    """The key when this process holds it; None for one in an HSM."""
    return key if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) else None


def certificate_key(cert: x509.Certificate) -> PublicKey:
    """The certificate's public key, when it is one a CA or card may have (RSA, ECDSA)."""
    return public_key_of(cert.public_key())


def ca_key_to_der(key: PrivateKey) -> bytearray:
    """The key as PKCS#1 (RSA) or SEC1 (EC) DER, the forms an HSM imports; wipe after use."""
    return bytearray(
        key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )


# -- card certificates -------------------------------------------------------------------


def new_serial_number() -> int:
    """A random positive 159-bit serial: unpredictable, and at most 20 octets in DER."""
    serial = 0
    while serial == 0:
        serial = secrets.randbits(_SERIAL_BITS)
    return serial


def issue_card_certificate(
    *,
    ca_key: CaKey,
    ca_cert: x509.Certificate,
    subject: x509.Name,
    public_key: PublicKeyInput,
    usage: CertUsage,
    serial_number: int | None = None,
    validity_days: int = 1095,
    now: datetime,
    email: str | None = None,
    profile: CertProfile | None = None,
) -> x509.Certificate:
    """Issue one card certificate; it never outlives the CA certificate that signs it.

    ``profile`` carries the holder's names and the PKI links (DESIGN §3.9); ``email`` alone
    is the short form of ``CertProfile(email=...)``."""
    start = as_utc(now)
    _check_ca_usable(ca_key, ca_cert, start)
    key = public_key_of(public_key)
    serial = new_serial_number() if serial_number is None else _checked_serial(serial_number)
    if len(subject) == 0:
        raise InvalidInput("A card certificate needs a subject name.")
    end = min(start + timedelta(days=validity_days), ca_cert.not_valid_after_utc)
    builder = (
        _validity(x509.CertificateBuilder(), start, end)
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key)
        .serial_number(serial)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key), critical=False)
        .add_extension(authority_key_identifier(ca_cert), critical=False)
    )
    for extension, critical in usage_extensions(usage, key, _profile(profile, email)):
        builder = builder.add_extension(extension, critical=critical)
    return sign_as_ca(builder, ca_key)


def build_csr(
    *,
    subject: x509.Name,
    private_key: PrivateKey,
    usage: CertUsage,
    email: str | None = None,
    profile: CertProfile | None = None,
) -> x509.CertificateSigningRequest:
    """A PKCS#10 request for an external CA, asking for the extensions this usage needs
    (the holder's names; that CA's policy and links are its own to add)."""
    if not isinstance(private_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise UnsupportedKey("Card keys must be RSA or ECDSA keys.")
    _check_key_strength(private_key.public_key())
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    wanted = _profile(profile, email)
    names_only = CertProfile(email=wanted.email, upn=wanted.upn, sid=wanted.sid)
    for extension, critical in usage_extensions(usage, private_key.public_key(), names_only):
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(private_key, signature_hash(private_key))


def csr_to_pem(csr: x509.CertificateSigningRequest) -> bytes:
    return csr.public_bytes(serialization.Encoding.PEM)


def _profile(profile: CertProfile | None, email: str | None) -> CertProfile:
    if profile is None:
        return CertProfile(email=email)
    if email is not None and email != profile.email:
        raise ValueError("give the email in the profile or alone, not both")
    return profile


def check_issued_by(cert: x509.Certificate, ca_cert: x509.Certificate) -> None:
    """Raise CertificateUntrustedIssuer unless ``ca_cert``'s key signed ``cert`` (and its
    subject is ``cert``'s issuer): a certificate that only *names* the CA does not pass."""
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise CertificateUntrustedIssuer(
            f"The certificate was not issued by the configured CA ({name_text(ca_cert.subject)})."
        ) from exc


# -- helpers for display, storage and checks ---------------------------------------------


def certificate_to_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def certificate_to_der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def load_certificate_pem(data: bytes) -> x509.Certificate:
    """Exactly one PEM certificate, or CertificateUnreadable saying what was found instead."""
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise CertificateUnreadable(
            "The file is not a PEM certificate (it should start with -----BEGIN CERTIFICATE-----)."
        ) from exc
    if len(certs) != 1:
        raise CertificateUnreadable(
            f"The file holds {len(certs)} certificates; import the card certificate alone."
        )
    return certs[0]


def load_certificate_der(data: bytes) -> x509.Certificate:
    """One DER certificate (as a PIV certificate container holds it)."""
    try:
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise CertificateUnreadable("The data is not a DER certificate.") from exc


def certificate_public_key_der(cert: x509.Certificate) -> bytes:
    """The certificate's SubjectPublicKeyInfo (DER), to compare with a card key."""
    return spki_der(cert.public_key())


def verify_chain(cert: x509.Certificate, ca_cert: x509.Certificate, now: datetime) -> None:
    """Raise unless ``ca_cert`` signed ``cert`` and both are valid at ``now``."""
    moment = as_utc(now)
    check_validity(ca_cert, moment, what="The CA certificate")
    check_validity(cert, moment, what="The certificate")
    check_issued_by(cert, ca_cert)


# -- shared with imported_certificate, and internals -------------------------------------


def as_utc(now: datetime) -> datetime:
    """``now`` in UTC to the second; a naive time is refused."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC).replace(microsecond=0)


def _validity(
    builder: x509.CertificateBuilder, start: datetime, end: datetime
) -> x509.CertificateBuilder:
    if end <= start:
        raise InvalidInput("The certificate would expire before it starts.")
    return builder.not_valid_before(start - CLOCK_SKEW).not_valid_after(end)


def check_validity(cert: x509.Certificate, now: datetime, *, what: str) -> None:
    """Raise CertificateNotYetValid or CertificateExpired unless ``cert`` is valid at ``now``."""
    if now < cert.not_valid_before_utc:
        raise CertificateNotYetValid(
            f"{what} is not valid yet: it starts on {cert.not_valid_before_utc.isoformat()}."
        )
    if now > cert.not_valid_after_utc:
        raise CertificateExpired(f"{what} expired on {cert.not_valid_after_utc.isoformat()}.")


def _check_ca_usable(ca_key: CaKey, ca_cert: x509.Certificate, now: datetime) -> None:
    check_ca_pair(ca_key, ca_cert)
    try:
        check_validity(ca_cert, now, what="The CA certificate")
    except CertificateError as exc:
        raise CaUnusable(exc.message) from exc


def extension_value(cert: x509.Certificate, kind: type[Any]) -> Any:
    """The value of ``cert``'s extension of ``kind``, or None when it has none."""
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def authority_key_identifier(ca_cert: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    """What certificates and CRLs signed by ``ca_cert``'s key name it by."""
    ski = extension_value(ca_cert, x509.SubjectKeyIdentifier)
    if isinstance(ski, x509.SubjectKeyIdentifier):
        return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    return x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key_of(ca_cert.public_key()))


def ca_key_id(ca_cert: x509.Certificate) -> str:
    """The CA's key identifier in hex: what the store records as a certificate's issuing
    key, and what names the CA's CRL URL (stable while the key is)."""
    identifier = authority_key_identifier(ca_cert).key_identifier
    assert identifier is not None  # both constructors above set it
    return identifier.hex()


def signature_hash(key: CaKey) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512:
    """The hash a signature by ``key`` uses: at least as strong as the key."""
    public = key.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey) and public.curve.key_size > 256:
        return hashes.SHA384() if public.curve.key_size <= 384 else hashes.SHA512()
    return hashes.SHA256()


def public_key_of(key: Any) -> PublicKey:
    """A card's public key (an object or its DER SubjectPublicKeyInfo), strong enough."""
    if isinstance(key, bytes):
        try:
            key = serialization.load_der_public_key(key)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise UnsupportedKey("The public key is not a readable SubjectPublicKeyInfo.") from exc
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise UnsupportedKey("Card keys must be RSA or ECDSA keys.")
    _check_key_strength(key)
    return key


def _check_key_strength(key: PublicKey) -> None:
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise UnsupportedKey(f"RSA keys must have at least {MIN_RSA_BITS} bits.")
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name not in CURVE_NAMES:
        raise UnsupportedKey("ECDSA keys must be on NIST P-256, P-384 or P-521.")


def spki_der(key: Any) -> bytes:
    """A public key's DER SubjectPublicKeyInfo, to compare two keys."""
    return bytes(
        key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _checked_serial(serial: int) -> int:
    if not 0 < serial < 2**_SERIAL_BITS:
        raise InvalidInput("A certificate serial number must be positive and below 2**159.")
    return serial
