"""The backup box: a STREAM of AES-GCM chunks under a file key wrapped to the operator."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa, x25519

from cardvault.crypto import backup_box as box
from cardvault.errors import InvalidInput

PEM = serialization.Encoding.PEM


def _pair(private: x25519.X25519PrivateKey | rsa.RSAPrivateKey) -> tuple[bytes, bytes]:
    public = private.public_key().public_bytes(PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    secret = private.private_bytes(
        PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return public, secret


def _seal(data: bytes, wrap_to: bytes) -> bytes:
    out = io.BytesIO()
    key = box.new_file_key()
    writer = box.BoxWriter(out, key, dict(box.wrap_for_recipient(wrap_to, key)))
    for i in range(0, len(data), 1000):
        writer.write(data[i : i + 1000])
    writer.close()
    return out.getvalue()


def _open(blob: bytes, identity: bytes) -> bytes:
    inp = io.BytesIO(blob)
    header, aad = box.read_header(inp)
    wrap = header["wrap"]
    assert isinstance(wrap, dict)
    key = box.unwrap(wrap, identity_pem=identity, passphrase=None)
    return b"".join(box.open_chunks(inp, header, aad, key))


DATA = bytes(range(256)) * 1000  # four chunks


def _x25519() -> x25519.X25519PrivateKey:
    return x25519.X25519PrivateKey.generate()


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 3072)


@pytest.mark.parametrize("make", [_x25519, _rsa], ids=["x25519", "rsa"])
def test_what_is_sealed_to_a_key_opens_with_its_private_key_only(
    make: Callable[[], x25519.X25519PrivateKey | rsa.RSAPrivateKey],
) -> None:
    public, secret = _pair(make())
    blob = _seal(DATA, public)
    assert _open(blob, secret) == DATA
    with pytest.raises(box.BackupUnreadable, match="does not open the backup"):
        _open(blob, _pair(make())[1])


def test_a_cut_swapped_or_altered_backup_is_refused() -> None:
    public, secret = _pair(x25519.X25519PrivateKey.generate())
    blob = _seal(DATA, public)
    with pytest.raises(box.BackupUnreadable, match="cut short"):
        _open(blob[:-5], secret)
    size = int.from_bytes(blob[len(box.MAGIC) : len(box.MAGIC) + 4], "big")
    header_end = len(box.MAGIC) + 4 + size
    first = int.from_bytes(blob[header_end : header_end + 4], "big") + 4
    chunks = blob[header_end:]
    dropped = blob[:header_end] + chunks[first:]  # the first chunk left out
    with pytest.raises(box.BackupUnreadable, match="part 1 does not verify"):
        _open(dropped, secret)
    altered = bytearray(blob)
    altered[-1] ^= 1
    with pytest.raises(box.BackupUnreadable, match="does not verify"):
        _open(bytes(altered), secret)


def test_a_passphrase_wraps_the_file_key_under_argon2id() -> None:
    key = box.new_file_key()
    wrap = box.wrap_with_passphrase(b"correct horse battery", key)
    assert wrap["kind"] == "passphrase"
    assert box.unwrap(wrap, identity_pem=None, passphrase=b"correct horse battery") == key
    with pytest.raises(box.BackupUnreadable, match="does not open the backup"):
        box.unwrap(wrap, identity_pem=None, passphrase=b"wrong horse battery")
    with pytest.raises(InvalidInput, match="at least 12"):
        box.wrap_with_passphrase(b"short", key)


def test_keys_that_are_not_x25519_or_strong_rsa_are_refused() -> None:
    ec_public = _pair(ec.generate_private_key(ec.SECP256R1()))[0]  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="X25519 or RSA"):
        box.wrap_for_recipient(ec_public, box.new_file_key())
    weak = _pair(rsa.generate_private_key(65537, 2048))[0]
    with pytest.raises(InvalidInput, match="3072 bits"):
        box.wrap_for_recipient(weak, box.new_file_key())
