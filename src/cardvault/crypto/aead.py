"""AES-256-GCM sealing of small secrets (DESIGN §3.1).

Every blob is ``nonce (12 bytes) ‖ ciphertext ‖ tag (16 bytes)`` with a fresh random nonce.
AES-GCM with random 96-bit nonces is safe for far more messages than one key here ever seals
(each DEK seals a handful of keys; KEKs seal one DEK). The associated data binds a blob to where
it belongs (card, slot, role, version), built with :func:`aad` so that no two different
contexts ever encode to the same bytes.
"""

from __future__ import annotations

import secrets
from dataclasses import field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cardvault.errors import IntegrityError, error

__all__ = ["KEY_SIZE", "NONCE_SIZE", "TAG_SIZE", "SealBroken", "aad", "open_sealed", "seal", "wipe"]

KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16


@error
class SealBroken(IntegrityError):
    """A sealed blob did not open: it was changed, moved to another context, or the key is wrong."""

    code = "integrity"

    message: str = field(default="sealed data failed authentication", kw_only=False)


def _cipher(key: bytes | bytearray) -> AESGCM:
    if len(key) != KEY_SIZE:
        raise SealBroken("sealing key must be 32 bytes")
    return AESGCM(key)


def seal(key: bytes | bytearray, plaintext: bytes | bytearray, aad: bytes) -> bytes:
    """Encrypt and authenticate ``plaintext`` under ``key``, bound to ``aad``."""
    nonce = secrets.token_bytes(NONCE_SIZE)
    return nonce + _cipher(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes | bytearray, blob: bytes, aad: bytes) -> bytearray:
    """Decrypt a blob made by :func:`seal`; any failure raises :class:`SealBroken`.

    The plaintext is written straight into a ``bytearray`` the caller can :func:`wipe`.
    """
    if len(blob) < NONCE_SIZE + TAG_SIZE:
        raise SealBroken("sealed data is truncated")
    cipher = _cipher(key)
    out = bytearray(len(blob) - NONCE_SIZE - TAG_SIZE)
    try:
        cipher.decrypt_into(blob[:NONCE_SIZE], blob[NONCE_SIZE:], aad, out)
    except (InvalidTag, ValueError) as err:
        wipe(out)
        raise SealBroken() from err
    return out


def wipe(buf: bytearray) -> None:
    """Overwrite ``buf`` with zeros in place (best effort: Python may hold other copies)."""
    buf[:] = bytes(len(buf))


def aad(*parts: str | bytes | int) -> bytes:
    """Encode associated-data parts unambiguously: a type tag and a 4-byte length per part.

    ``aad("ab", "c") != aad("a", "bc")`` and ``aad(1) != aad("1")``.
    """
    out = bytearray()
    for part in parts:
        tag, raw = _encode_part(part)
        out += tag + len(raw).to_bytes(4, "big") + raw
    return bytes(out)


def _encode_part(part: str | bytes | int) -> tuple[bytes, bytes]:
    if isinstance(part, bool):
        raise TypeError("aad parts are str, bytes or int, not bool")
    if isinstance(part, str):
        return b"s", part.encode("utf-8")
    if isinstance(part, bytes | bytearray):
        return b"b", bytes(part)
    if isinstance(part, int):
        return b"i", str(part).encode("ascii")
    raise TypeError(f"aad part of type {type(part).__name__} is not supported")
