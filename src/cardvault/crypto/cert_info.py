"""How a certificate is shown: names as people write them, serials as openssl prints them,
and a JSON-ready summary every program (CLI, pages, API) uses so that they read the same."""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from cardvault.crypto.profile import CertUsage

CURVE_NAMES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}


#: RFC 4514 knows only a few short names; spell out the rest as people write them
_DISPLAY_NAMES = {
    NameOID.SERIAL_NUMBER: "serialNumber",
    NameOID.GIVEN_NAME: "givenName",
    NameOID.SURNAME: "surname",
    NameOID.EMAIL_ADDRESS: "emailAddress",
}


def name_text(name: x509.Name) -> str:
    """A subject or issuer as people write it (RFC 4514, ``serialNumber=`` rather than
    ``2.5.4.5=``); every program that shows a name uses this, so they read the same."""
    return name.rfc4514_string(_DISPLAY_NAMES)


def serial_hex(serial: int) -> str:
    """A certificate serial as ``openssl x509 -serial`` prints it: upper-case hex in whole
    octets, so a serial whose first octet is below 0x10 keeps its leading zero."""
    if serial < 0:  # RFC 5280 forbids it, but a foreign CA's certificate may have one
        return "-" + serial_hex(-serial)
    digits = f"{serial:X}"
    return digits.zfill(len(digits) + len(digits) % 2)


def certificate_summary(cert: x509.Certificate) -> dict[str, Any]:
    """What a person needs to recognise a certificate, as JSON-ready strings."""
    return {
        "subject": name_text(cert.subject),
        "issuer": name_text(cert.issuer),
        "serial": serial_hex(cert.serial_number),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "fingerprint_sha256": cert.fingerprint(hashes.SHA256()).hex(),
        "key": _describe_key(cert.public_key()),
        "usage": _describe_usage(cert),
    }


def _describe_usage(cert: x509.Certificate) -> str | None:
    constraints = _extension(cert, x509.BasicConstraints)
    key_usage = _extension(cert, x509.KeyUsage)
    if constraints is not None and constraints.ca:
        return "ca"
    if key_usage is None:
        return None
    if key_usage.content_commitment:
        return CertUsage.CONTENT_COMMITMENT.value
    return CertUsage.AUTHENTICATION.value if key_usage.digital_signature else None


def _describe_key(key: Any) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA-{key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {CURVE_NAMES.get(key.curve.name, key.curve.name)}"
    return type(key).__name__


def _extension(cert: x509.Certificate, kind: type[Any]) -> Any:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None
