"""OCSP (RFC 6960) with ``cryptography``'s builders: read a request, answer it, and make the
delegated responder certificate that signs the answers.

The responder is *delegated* (§4.2.2.2): the CA certifies a separate key with
id-kp-OCSPSigning, so the CA key signs only certificates and CRLs, and with id-pkix-ocsp-nocheck
so relying parties do not ask about the responder itself. Errors are answered with the RFC's
own statuses (malformedRequest, unauthorized, internalError), never an HTTP error page.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from cardvault.crypto.crl import reason_flag
from cardvault.crypto.keys import KeyAlgorithm, generate_private_key
from cardvault.crypto.profile import key_usage
from cardvault.crypto.x509 import (
    CLOCK_SKEW,
    CaKey,
    PrivateKey,
    PublicKey,
    authority_key_identifier,
    new_serial_number,
    sign_as_ca,
    signature_hash,
)
from cardvault.errors import IntegrityError

#: at most this many bytes of request are read (a request is ~100 bytes; nonces ≤ 32)
MAX_REQUEST_BYTES = 4096
_NONCE_MAX = 128
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


#: good, revoked or unknown (RFC 6960 §2.2), named here so services need not import it
CertStatus = ocsp.OCSPCertStatus


class OcspMalformed(ValueError):
    """The bytes are not one OCSP request this responder can read."""


@dataclass(frozen=True, kw_only=True)
class OcspQuery:
    """The one certificate a request asks about, by its issuer's hashes and serial."""

    serial: int
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    algorithm: hashes.HashAlgorithm
    nonce: bytes | None


@dataclass(frozen=True, kw_only=True)
class OcspAnswer:
    """What the responder says about one certificate; ``revoked_at``/``reason`` if revoked."""

    status: ocsp.OCSPCertStatus
    revoked_at: datetime | None = None
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class Responder:
    key: PrivateKey
    cert: x509.Certificate


def new_responder_key() -> PrivateKey:
    """A fresh P-256 key for the delegated responder: it signs every answer, so it is the
    fast and small kind, and it never signs certificates."""
    return generate_private_key(KeyAlgorithm.ECP256)


def load_responder_key(pem: bytes) -> PrivateKey | None:
    """The responder key from the PKCS#8 PEM it was sealed as; None when it is not an EC
    key (then the caller makes a new one). Unreadable PEM raises IntegrityError: it came
    out of a sealed file, so it was damaged before it was sealed."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise IntegrityError("The sealed OCSP responder key is damaged.") from exc
    return key if isinstance(key, ec.EllipticCurvePrivateKey) else None


def parse_request(der: bytes) -> OcspQuery:
    """The request's CertID and nonce; OcspMalformed for anything else (several CertIDs,
    an unknown hash, an oversized nonce, bytes that are not DER)."""
    if not der or len(der) > MAX_REQUEST_BYTES:
        raise OcspMalformed("empty or oversized request")
    try:
        request = ocsp.load_der_ocsp_request(der)
        algorithm = request.hash_algorithm
        nonce: bytes | None = None
        for extension in request.extensions:
            if isinstance(extension.value, x509.OCSPNonce):
                nonce = extension.value.nonce
        query = OcspQuery(
            serial=request.serial_number,
            issuer_name_hash=request.issuer_name_hash,
            issuer_key_hash=request.issuer_key_hash,
            algorithm=algorithm,
            nonce=nonce,
        )
    except (ValueError, TypeError) as exc:
        raise OcspMalformed(str(exc)) from exc
    if algorithm.name not in _HASHES or (nonce is not None and len(nonce) > _NONCE_MAX):
        raise OcspMalformed("unsupported hash or nonce")
    return query


def names_issuer(query: OcspQuery, ca_cert: x509.Certificate) -> bool:
    """Whether the request's CertID names ``ca_cert`` (hash of its subject and of its key)."""
    name_hash, key_hash = _issuer_hashes(ca_cert, query.algorithm)
    return hmac.compare_digest(name_hash + key_hash, query.issuer_name_hash + query.issuer_key_hash)


def _issuer_hashes(
    ca_cert: x509.Certificate, algorithm: hashes.HashAlgorithm
) -> tuple[bytes, bytes]:
    name = hashes.Hash(_HASHES[algorithm.name]())
    name.update(ca_cert.subject.public_bytes())
    key = hashes.Hash(_HASHES[algorithm.name]())
    key.update(_public_key_bits(ca_cert))
    return name.finalize(), key.finalize()


def _public_key_bits(cert: x509.Certificate) -> bytes:
    """The subjectPublicKey BIT STRING's contents (what RFC 6960 CertID hashes): the PKCS#1
    or X9.62 encoding of the key, which ``cryptography`` produces directly."""
    key = cert.public_key()
    try:
        return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    except ValueError:
        return key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )


def build_response(
    *,
    query: OcspQuery,
    answer: OcspAnswer,
    responder: Responder,
    this_update: datetime,
    next_update: datetime,
) -> bytes:
    """A successful, signed BasicOCSPResponse for one CertID, echoing the nonce if any."""
    builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
        issuer_name_hash=query.issuer_name_hash,
        issuer_key_hash=query.issuer_key_hash,
        serial_number=query.serial,
        algorithm=query.algorithm,
        cert_status=answer.status,
        this_update=this_update.replace(microsecond=0),
        next_update=next_update.replace(microsecond=0),
        revocation_time=(
            answer.revoked_at.replace(microsecond=0) if answer.revoked_at is not None else None
        ),
        revocation_reason=reason_flag(answer.reason)
        if answer.status is ocsp.OCSPCertStatus.REVOKED
        else None,
    )
    builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, responder.cert)
    builder = builder.certificates([responder.cert])
    if query.nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(query.nonce), critical=False)
    response = builder.sign(responder.key, signature_hash(responder.key))
    return response.public_bytes(serialization.Encoding.DER)


def error_response(status: ocsp.OCSPResponseStatus) -> bytes:
    """An unsigned error answer (malformedRequest, unauthorized, internalError, …)."""
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
        serialization.Encoding.DER
    )


def responder_certificate(
    *,
    ca_key: CaKey,
    ca_cert: x509.Certificate,
    public_key: PublicKey,
    now: datetime,
    days: int,
) -> x509.Certificate:
    """The delegated responder's certificate: OCSPSigning, ocsp-nocheck, short-lived."""
    start = now.replace(microsecond=0)
    end = min(start + timedelta(days=days), ca_cert.not_valid_after_utc)
    subject = x509.Name(
        [*ca_cert.subject, x509.NameAttribute(x509.NameOID.COMMON_NAME, "OCSP responder")]
        if not any(a.oid == x509.NameOID.COMMON_NAME for a in ca_cert.subject)
        else [
            a
            if a.oid != x509.NameOID.COMMON_NAME
            else x509.NameAttribute(x509.NameOID.COMMON_NAME, f"{a.value!s} OCSP responder"[:64])
            for a in ca_cert.subject
        ]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(new_serial_number())
        .not_valid_before(start - CLOCK_SKEW)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
        .add_extension(x509.OCSPNoCheck(), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(authority_key_identifier(ca_cert), critical=False)
    )
    return sign_as_ca(builder, ca_key)


def malformed() -> bytes:
    """The answer to bytes that are not an OCSP request."""
    return error_response(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)


def unauthorized() -> bytes:
    """The answer to a request about an issuer this responder does not serve (§2.3)."""
    return error_response(ocsp.OCSPResponseStatus.UNAUTHORIZED)


def try_later() -> bytes:
    """The answer to a client asking too often (RFC 6960 §2.3 tryLater)."""
    return error_response(ocsp.OCSPResponseStatus.TRY_LATER)
