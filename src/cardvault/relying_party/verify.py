"""Checking a card's answer to a challenge: signature, certificate chain, key usage."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from cardvault.crypto import keys as ckeys
from cardvault.crypto import x509 as cx509
from cardvault.errors import AuthenticationFailed, InvalidInput


class ProofRejected(AuthenticationFailed):
    code = "proof_rejected"


def parse_certificate(pem: str) -> x509.Certificate:
    if len(pem) > 16384:
        raise InvalidInput("The certificate is too large.")
    return cx509.load_certificate_pem(pem.encode())


def check_certificate(cert: x509.Certificate, ca_cert: x509.Certificate, now: datetime) -> None:
    """Issued by our trusted CA, valid now, and meant for client authentication."""
    try:
        cx509.verify_chain(cert, ca_cert, now)
    except Exception as exc:
        raise ProofRejected(f"The certificate is not trusted: {exc}") from exc
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound as exc:
        raise ProofRejected("The certificate is not an authentication certificate.") from exc
    if ExtendedKeyUsageOID.CLIENT_AUTH not in eku or not usage.digital_signature:
        raise ProofRejected("The certificate is not an authentication certificate.")


def check_signature(cert: x509.Certificate, signature_b64: str, digest: bytes, scheme: str) -> None:
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        chosen = ckeys.SignatureScheme(scheme)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput("The signature or its scheme is malformed.") from exc
    public = ckeys.load_public_key_der(ckeys.public_key_der(cert.public_key()))  # type: ignore[arg-type]
    try:
        ckeys.verify_digest(public, signature, digest, hash_alg="sha256", scheme=chosen)
    except Exception as exc:
        raise ProofRejected("The signature does not match the challenge.") from exc


def subject_user_id(cert: x509.Certificate) -> str | None:
    values = cert.subject.get_attributes_for_oid(x509.NameOID.SERIAL_NUMBER)
    return str(values[0].value) if values else None
