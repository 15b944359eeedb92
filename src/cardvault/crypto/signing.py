"""Ed25519 signatures for the service's own statements, such as audit checkpoints (DESIGN §3.7).

Ed25519 because the signatures are verified by our own tools only, it has no parameters to get
wrong, and signing is deterministic, so no randomness can leak the key.
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from cardvault.errors import IntegrityError, InvalidInput

__all__ = [
    "AuditKey",
    "SignatureInvalid",
    "audit_key_to_pem",
    "generate_audit_key",
    "key_id",
    "load_audit_key_pem",
    "load_public_key_pem",
    "public_key_bytes",
    "public_key_to_pem",
    "sign_ed25519",
    "verify_any",
    "verify_ed25519",
]

AuditKey = Ed25519PrivateKey
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64


class SignatureInvalid(IntegrityError):
    """A signature does not verify: the message or signature was changed, or the key is wrong."""

    code = "signature_invalid"


def generate_audit_key() -> AuditKey:
    return Ed25519PrivateKey.generate()


def sign_ed25519(key: AuditKey, message: bytes) -> bytes:
    return key.sign(message)


def verify_ed25519(public_key: bytes, message: bytes, signature: bytes) -> None:
    """Raise SignatureInvalid unless ``signature`` is the key's signature over ``message``."""
    if len(public_key) != PUBLIC_KEY_SIZE or len(signature) != SIGNATURE_SIZE:
        raise SignatureInvalid("The signature or public key has the wrong length.")
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError) as exc:
        raise SignatureInvalid("The signature does not verify.") from exc


def public_key_bytes(key: AuditKey) -> bytes:
    """The raw 32-byte public key, as checkpoints record it."""
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key: bytes) -> str:
    """A short stable name for a public key, so checkpoints can say which key signed them."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def audit_key_to_pem(key: AuditKey) -> bytearray:
    """Unencrypted PKCS#8 PEM, for the caller to seal under the master key and then wipe."""
    return bytearray(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def load_audit_key_pem(pem: bytes | bytearray) -> AuditKey:
    try:
        key = serialization.load_pem_private_key(bytes(pem), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InvalidInput("The audit key is not a readable PEM private key.") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInput("The audit key must be an Ed25519 key.")
    return key


def public_key_to_pem(public_key: bytes) -> bytes:
    """SubjectPublicKeyInfo PEM, for operators who verify checkpoints with other tools."""
    return Ed25519PublicKey.from_public_bytes(public_key).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_key_pem(pem: bytes) -> bytes:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InvalidInput("The audit public key is not a readable PEM public key.") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidInput("The audit public key must be an Ed25519 key.")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def verify_any(public_keys: tuple[bytes, ...], message: bytes, signature: bytes) -> None:
    """SignatureInvalid unless one of ``public_keys`` signed ``message`` (a key and the
    keys it replaced, after a rotation)."""
    for key in public_keys:
        try:
            verify_ed25519(key, message, signature)
        except SignatureInvalid:
            continue
        return
    raise SignatureInvalid("no audit key signed this")
