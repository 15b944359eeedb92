from __future__ import annotations

import hashlib
from functools import cache

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from cardvault.crypto.keys import (
    BadSignature,
    KeyAlgorithm,
    KeyMalformed,
    PrivateKey,
    SignatureScheme,
    UnsupportedKey,
    algorithm_of,
    generate_private_key,
    load_private_key,
    load_public_key_der,
    private_key_to_pkcs8,
    public_key_der,
    sign_digest,
    sign_message,
    verify_digest,
)
from cardvault.errors import AuthenticationFailed, InvalidInput

DIGEST = hashlib.sha256(b"challenge").digest()


@cache
def key_of(alg: KeyAlgorithm) -> PrivateKey:
    return generate_private_key(alg)


SCHEMES = [
    (KeyAlgorithm.RSA2048, SignatureScheme.RSA_PKCS1V15),
    (KeyAlgorithm.RSA2048, SignatureScheme.RSA_PSS),
    (KeyAlgorithm.RSA3072, SignatureScheme.RSA_PKCS1V15),
    (KeyAlgorithm.ECP256, SignatureScheme.ECDSA),
]


@pytest.mark.parametrize("alg", list(KeyAlgorithm))
def test_generated_key_has_the_requested_algorithm(alg: KeyAlgorithm) -> None:
    key = key_of(alg)
    assert algorithm_of(key.public_key()) is alg
    assert algorithm_of(key) is alg


@pytest.mark.parametrize("alg", list(KeyAlgorithm))
@pytest.mark.parametrize("trusted", [True, False])
def test_pkcs8_round_trip(alg: KeyAlgorithm, trusted: bool) -> None:
    pkcs8 = private_key_to_pkcs8(key_of(alg))
    assert isinstance(pkcs8, bytearray)
    loaded = load_private_key(pkcs8, trusted=trusted)
    assert public_key_der(loaded) == public_key_der(key_of(alg))


def test_public_key_der_round_trip() -> None:
    der = public_key_der(key_of(KeyAlgorithm.ECP256))
    assert public_key_der(load_public_key_der(der)) == der


def test_malformed_pkcs8_is_refused() -> None:
    with pytest.raises(KeyMalformed):
        load_private_key(b"\x30\x03\x02\x01\x00", trusted=True)


def test_unsupported_curve_and_rsa_size_are_refused() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(UnsupportedKey):
        load_private_key(private_key_to_pkcs8(p384), trusted=False)
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - a weak key, to be refused
    with pytest.raises(UnsupportedKey):
        algorithm_of(small.public_key())


@pytest.mark.parametrize(("alg", "scheme"), SCHEMES)
def test_sign_digest_verifies_with_the_public_key(
    alg: KeyAlgorithm, scheme: SignatureScheme
) -> None:
    key = key_of(alg)
    signature = sign_digest(key, DIGEST, scheme=scheme)
    verify_digest(key.public_key(), signature, DIGEST, hash_alg="sha256", scheme=scheme)


@pytest.mark.parametrize(("alg", "scheme"), SCHEMES)
def test_signature_over_another_digest_raises_bad_signature(
    alg: KeyAlgorithm, scheme: SignatureScheme
) -> None:
    key = key_of(alg)
    signature = sign_digest(key, DIGEST, scheme=scheme)
    other = hashlib.sha256(b"other").digest()
    with pytest.raises(BadSignature) as info:
        verify_digest(key.public_key(), signature, other, scheme=scheme)
    assert isinstance(info.value, AuthenticationFailed)


def test_sign_message_equals_signing_its_digest() -> None:
    key = key_of(KeyAlgorithm.RSA2048)
    signature = sign_message(key, b"challenge", SignatureScheme.RSA_PKCS1V15)
    assert signature == sign_digest(key, DIGEST, scheme=SignatureScheme.RSA_PKCS1V15)


def test_sha384_and_sha512_digests_are_supported() -> None:
    key = key_of(KeyAlgorithm.ECP256)
    for name in ("sha384", "sha512"):
        digest = hashlib.new(name, b"doc").digest()
        signature = sign_digest(key, digest, hash_alg=name, scheme=SignatureScheme.ECDSA)
        verify_digest(
            key.public_key(), signature, digest, hash_alg=name, scheme=SignatureScheme.ECDSA
        )


@pytest.mark.parametrize(
    ("alg", "scheme"),
    [
        (KeyAlgorithm.RSA2048, SignatureScheme.ECDSA),
        (KeyAlgorithm.ECP256, SignatureScheme.RSA_PSS),
        (KeyAlgorithm.ECP256, SignatureScheme.RSA_PKCS1V15),
    ],
)
def test_scheme_that_does_not_fit_the_key_is_refused(
    alg: KeyAlgorithm, scheme: SignatureScheme
) -> None:
    with pytest.raises(InvalidInput, match="does not fit"):
        sign_digest(key_of(alg), DIGEST, scheme=scheme)


@pytest.mark.parametrize(
    ("digest", "hash_alg"), [(DIGEST[:31], "sha256"), (DIGEST, "sha384"), (DIGEST, "md5")]
)
def test_digest_of_wrong_length_or_unknown_hash_is_refused(digest: bytes, hash_alg: str) -> None:
    with pytest.raises(InvalidInput):
        sign_digest(
            key_of(KeyAlgorithm.ECP256), digest, hash_alg=hash_alg, scheme=SignatureScheme.ECDSA
        )


def test_pss_and_pkcs1_signatures_do_not_cross_verify() -> None:
    key = key_of(KeyAlgorithm.RSA2048)
    signature = sign_digest(key, DIGEST, scheme=SignatureScheme.RSA_PSS)
    with pytest.raises(BadSignature):
        verify_digest(key.public_key(), signature, DIGEST, scheme=SignatureScheme.RSA_PKCS1V15)
