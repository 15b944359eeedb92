"""The encrypted container of a backup (``cardvault backup``; docs/operator/backup.md).

A random 256-bit file key encrypts the backup as a STREAM of AES-256-GCM chunks (Hoang,
Reyhanitabar, Rogaway and Vizár, "Online authenticated-encryption and its nonce-reuse
misuse-resistance", §7): chunk *i* uses the nonce ``prefix(7) ‖ i(4) ‖ last(1)`` and the
header as associated data, so chunks cannot be reordered, dropped or moved to another
backup, and a file cut short is refused (its last chunk is not marked last).

The file key is wrapped for the operator in one of three ways, named in the header:

- ``x25519``: to an X25519 public key (an ephemeral key agreement, HKDF-SHA256, AES-GCM);
- ``rsa-oaep``: to an RSA public key (OAEP with SHA-256), 3072 bits or more;
- ``passphrase``: under Argon2id of a passphrase (RFC 9106's first recommendation: 2 GiB
  would be too much for a small host, so 256 MiB, 3 passes).

Layout: ``MAGIC``, a 4-byte header length, the header (JSON), then chunks, each a 4-byte
length and its ciphertext.
"""

from __future__ import annotations

import base64
import json
import secrets
import struct
from collections.abc import Iterator
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cardvault.crypto.kdf import Argon2Params, derive_key, hkdf_key
from cardvault.errors import IntegrityError, InvalidInput

MAGIC = b"cardvault-backup\n"
CHUNK = 64 * 1024
_LEN = struct.Struct(">I")
_INFO = b"cardvault backup v1 x25519"
_WRAP_AAD = b"cardvault backup v1 file key"
PASSPHRASE_ARGON2 = Argon2Params(time_cost=3, memory_kib=256 * 1024, parallelism=1)
_MIN_RSA_BITS = 3072
_MAX_HEADER = 64 * 1024


class BackupUnreadable(IntegrityError):
    code = "backup_unreadable"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: object) -> bytes:
    if not isinstance(text, str):
        raise BackupUnreadable("The backup's header is damaged.")
    return base64.b64decode(text, validate=True)


# -- wrapping the file key ----------------------------------------------------------------


def _wrap(kek: bytes | bytearray, file_key: bytes) -> str:
    nonce = secrets.token_bytes(12)
    return _b64(nonce + AESGCM(bytes(kek)).encrypt(nonce, file_key, _WRAP_AAD))


def _unwrap(kek: bytes | bytearray, wrapped: object) -> bytes:
    blob = _unb64(wrapped)
    try:
        return AESGCM(bytes(kek)).decrypt(blob[:12], blob[12:], _WRAP_AAD)
    except InvalidTag:
        raise BackupUnreadable(
            "This key or passphrase does not open the backup.",
            remedy="Use the private key (or passphrase) the backup was made for.",
        ) from None


def wrap_for_recipient(public_pem: bytes, file_key: bytes) -> dict[str, str]:
    """The file key wrapped to an operator's X25519 or RSA public key (PEM)."""
    try:
        public = serialization.load_pem_public_key(public_pem)
    except ValueError as exc:
        raise InvalidInput("The recipient key is not a PEM public key.") from exc
    if isinstance(public, x25519.X25519PublicKey):
        ephemeral = x25519.X25519PrivateKey.generate()
        epk = ephemeral.public_key().public_bytes_raw()
        shared = ephemeral.exchange(public)
        kek = hkdf_key(shared, salt=epk + public.public_bytes_raw(), info=_INFO)
        return {"kind": "x25519", "epk": _b64(epk), "wrapped": _wrap(kek, file_key)}
    if isinstance(public, rsa.RSAPublicKey):
        if public.key_size < _MIN_RSA_BITS:
            raise InvalidInput(f"An RSA recipient key needs {_MIN_RSA_BITS} bits or more.")
        return {"kind": "rsa-oaep", "wrapped": _b64(public.encrypt(file_key, _oaep()))}
    raise InvalidInput("The recipient key must be an X25519 or RSA public key.")


def wrap_with_passphrase(passphrase: bytes, file_key: bytes) -> dict[str, object]:
    if len(passphrase) < 12:
        raise InvalidInput("A backup passphrase needs at least 12 characters.")
    salt = secrets.token_bytes(16)
    kek = derive_key(passphrase, salt, PASSPHRASE_ARGON2)
    return {
        "kind": "passphrase",
        "salt": _b64(salt),
        "argon2": {
            "time_cost": PASSPHRASE_ARGON2.time_cost,
            "memory_kib": PASSPHRASE_ARGON2.memory_kib,
            "parallelism": PASSPHRASE_ARGON2.parallelism,
        },
        "wrapped": _wrap(kek, file_key),
    }


def unwrap(
    wrap: dict[str, object], *, identity_pem: bytes | None, passphrase: bytes | None
) -> bytes:
    """The file key, with the operator's private key or passphrase."""
    kind = wrap.get("kind")
    if kind == "passphrase":
        if passphrase is None:
            raise InvalidInput("This backup is protected by a passphrase: give it.")
        params = wrap.get("argon2")
        if not isinstance(params, dict):
            raise BackupUnreadable("The backup's header is damaged.")
        kek = derive_key(passphrase, _unb64(wrap.get("salt")), Argon2Params(**params))
        return _unwrap(kek, wrap.get("wrapped"))
    if identity_pem is None:
        raise InvalidInput("This backup is encrypted to a private key: give its file.")
    private = _private_key(identity_pem)
    if kind == "x25519" and isinstance(private, x25519.X25519PrivateKey):
        epk = _unb64(wrap.get("epk"))
        shared = private.exchange(x25519.X25519PublicKey.from_public_bytes(epk))
        kek = hkdf_key(shared, salt=epk + private.public_key().public_bytes_raw(), info=_INFO)
        return _unwrap(kek, wrap.get("wrapped"))
    if kind == "rsa-oaep" and isinstance(private, rsa.RSAPrivateKey):
        try:
            return private.decrypt(_unb64(wrap.get("wrapped")), _oaep())
        except ValueError:
            raise BackupUnreadable("This private key does not open the backup.") from None
    raise BackupUnreadable(
        f"This backup is wrapped with {kind!r}, which the key given cannot open.",
        remedy="Use the private key the backup was made for.",
    )


def _private_key(pem: bytes) -> object:
    try:
        return serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise InvalidInput("The identity file is not an unencrypted PEM private key.") from exc


def _oaep() -> padding.OAEP:
    return padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


# -- the stream ---------------------------------------------------------------------------


def new_file_key() -> bytes:
    return secrets.token_bytes(32)


class BoxWriter:
    """Encrypts what is written to ``out`` in chunks; ``close()`` writes the last one."""

    def __init__(self, out: BinaryIO, file_key: bytes, wrap: dict[str, object]) -> None:
        self._out = out
        self._aead = AESGCM(file_key)
        self._prefix = secrets.token_bytes(7)
        header = json.dumps({"format": 1, "wrap": wrap, "prefix": _b64(self._prefix)}).encode()
        self._aad = MAGIC + header
        out.write(MAGIC + _LEN.pack(len(header)) + header)
        self._buffer = bytearray()
        self._counter = 0

    def write(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) > CHUNK:
            self._emit(bytes(self._buffer[:CHUNK]), last=False)
            del self._buffer[:CHUNK]

    def close(self) -> None:
        self._emit(bytes(self._buffer), last=True)
        self._buffer.clear()

    def _emit(self, chunk: bytes, *, last: bool) -> None:
        nonce = self._prefix + struct.pack(">I?", self._counter, last)
        sealed = self._aead.encrypt(nonce, chunk, self._aad)
        self._out.write(_LEN.pack(len(sealed)) + sealed)
        self._counter += 1


def read_header(inp: BinaryIO) -> tuple[dict[str, object], bytes]:
    """The header (wrap and nonce prefix) and the associated data of every chunk."""
    if inp.read(len(MAGIC)) != MAGIC:
        raise BackupUnreadable("This is not a cardvault backup.")
    size = _read_len(inp)
    if size > _MAX_HEADER:
        raise BackupUnreadable("The backup's header is damaged.")
    raw = inp.read(size)
    try:
        header = json.loads(raw)
    except ValueError:
        raise BackupUnreadable("The backup's header is damaged.") from None
    if not isinstance(header, dict) or header.get("format") != 1:
        raise BackupUnreadable("This backup's format is not one this cardvault reads.")
    return header, MAGIC + raw


def open_chunks(
    inp: BinaryIO, header: dict[str, object], aad: bytes, file_key: bytes
) -> Iterator[bytes]:
    """The plaintext, chunk by chunk, each authenticated before it is given out."""
    aead, prefix = AESGCM(file_key), _unb64(header.get("prefix"))
    counter = 0
    while True:
        size = _read_len(inp)
        sealed = inp.read(size)
        if len(sealed) != size:
            raise BackupUnreadable("The backup is cut short.")
        chunk, last = _open_chunk(aead, prefix, counter, sealed, aad)
        yield chunk
        if last:
            if inp.read(1):
                raise BackupUnreadable("The backup has data after its end.")
            return
        counter += 1


def _open_chunk(
    aead: AESGCM, prefix: bytes, counter: int, sealed: bytes, aad: bytes
) -> tuple[bytes, bool]:
    for last in (False, True):
        try:
            return aead.decrypt(prefix + struct.pack(">I?", counter, last), sealed, aad), last
        except InvalidTag:
            continue
    raise BackupUnreadable(
        f"The backup is damaged (part {counter + 1} does not verify).",
        remedy="Use another copy of the backup.",
    )


def _read_len(inp: BinaryIO) -> int:
    raw = inp.read(_LEN.size)
    if len(raw) != _LEN.size:
        raise BackupUnreadable("The backup is cut short.")
    (size,) = _LEN.unpack(raw)
    return int(size)
