"""Ed25519 signing for audit checkpoints, checked against RFC 8032 and openssl."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cardvault.crypto.signing import (
    SignatureInvalid,
    audit_key_to_pem,
    generate_audit_key,
    key_id,
    load_audit_key_pem,
    load_public_key_pem,
    public_key_bytes,
    public_key_to_pem,
    sign_ed25519,
    verify_ed25519,
)
from cardvault.errors import IntegrityError, InvalidInput

# RFC 8032 §7.1, TEST 2
RFC_SECRET = bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
RFC_PUBLIC = bytes.fromhex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
RFC_MESSAGE = bytes.fromhex("72")
RFC_SIGNATURE = bytes.fromhex(
    "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
    "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
)


def test_signature_matches_the_rfc8032_vector() -> None:
    key = Ed25519PrivateKey.from_private_bytes(RFC_SECRET)
    assert public_key_bytes(key) == RFC_PUBLIC
    assert sign_ed25519(key, RFC_MESSAGE) == RFC_SIGNATURE
    verify_ed25519(RFC_PUBLIC, RFC_MESSAGE, RFC_SIGNATURE)


def test_verify_refuses_a_changed_message_or_signature() -> None:
    with pytest.raises(SignatureInvalid, match="does not verify") as caught:
        verify_ed25519(RFC_PUBLIC, b"\x73", RFC_SIGNATURE)
    assert caught.value.code == "signature_invalid"
    assert isinstance(caught.value, IntegrityError)
    flipped = bytes([RFC_SIGNATURE[0] ^ 1]) + RFC_SIGNATURE[1:]
    with pytest.raises(SignatureInvalid):
        verify_ed25519(RFC_PUBLIC, RFC_MESSAGE, flipped)


@pytest.mark.parametrize(
    ("public", "signature"),
    [(RFC_PUBLIC[:31], RFC_SIGNATURE), (RFC_PUBLIC, RFC_SIGNATURE[:63]), (b"", b"")],
)
def test_verify_refuses_wrong_lengths(public: bytes, signature: bytes) -> None:
    with pytest.raises(SignatureInvalid, match="wrong length"):
        verify_ed25519(public, RFC_MESSAGE, signature)


def test_private_key_round_trips_through_pem() -> None:
    key = generate_audit_key()
    pem = audit_key_to_pem(key)
    assert isinstance(pem, bytearray)
    assert public_key_bytes(load_audit_key_pem(pem)) == public_key_bytes(key)


def test_loading_a_non_ed25519_or_garbage_key_is_refused() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(InvalidInput, match="must be an Ed25519 key"):
        load_audit_key_pem(pem)
    with pytest.raises(InvalidInput, match="not a readable PEM"):
        load_audit_key_pem(b"nope")
    with pytest.raises(InvalidInput, match="not a readable PEM"):
        load_public_key_pem(b"nope")


def test_key_id_is_a_short_stable_digest() -> None:
    assert key_id(RFC_PUBLIC) == key_id(RFC_PUBLIC)
    assert len(key_id(RFC_PUBLIC)) == 16
    assert key_id(RFC_PUBLIC) != key_id(public_key_bytes(generate_audit_key()))


def test_openssl_verifies_our_signature_with_the_exported_public_key(tmp_path: Path) -> None:
    key = generate_audit_key()
    message = b'{"chain":"service","seq":1}'
    public_pem = public_key_to_pem(public_key_bytes(key))
    assert load_public_key_pem(public_pem) == public_key_bytes(key)
    (tmp_path / "pub.pem").write_bytes(public_pem)
    (tmp_path / "msg").write_bytes(message)
    (tmp_path / "sig").write_bytes(sign_ed25519(key, message))
    done = subprocess.run(
        ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin",
         "-in", "msg", "-sigfile", "sig"],
        cwd=tmp_path, capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Signature Verified Successfully" in done.stdout
