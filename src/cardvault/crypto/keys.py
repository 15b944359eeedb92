"""The card's key pairs: generation, PKCS#8 (de)serialisation and prehashed signing (DESIGN §3.1).

Card keys are RSA-2048 by default, RSA-3072 or ECC P-256 by organisation choice. Signatures are
made over a digest the caller computed (the relying party's challenge hash, a document digest),
as a smartcard does. ECDSA signatures are DER-encoded (X9.62), as PIV returns them; RSA-PSS uses
MGF1 with the same hash and a salt as long as the digest.
"""

from __future__ import annotations

from dataclasses import field
from enum import StrEnum
from typing import TypeAlias

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from cardvault.errors import AuthenticationFailed, InvalidInput, error

__all__ = [
    "BadSignature",
    "KeyAlgorithm",
    "KeyMalformed",
    "PrivateKey",
    "PublicKey",
    "SignatureScheme",
    "UnsupportedKey",
    "algorithm_of",
    "generate_private_key",
    "load_private_key",
    "load_public_key_der",
    "private_key_to_pkcs8",
    "public_key_der",
    "sign_digest",
    "sign_message",
    "verify_digest",
]

PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey: TypeAlias = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


class KeyAlgorithm(StrEnum):
    RSA2048 = "rsa2048"
    RSA3072 = "rsa3072"
    ECP256 = "ecp256"


class SignatureScheme(StrEnum):
    RSA_PKCS1V15 = "rsa-pkcs1v15"
    RSA_PSS = "rsa-pss"
    ECDSA = "ecdsa"


class KeyMalformed(InvalidInput):
    code = "key_malformed"


class UnsupportedKey(InvalidInput):
    """The key, hash or scheme is not one cardvault uses (or they do not fit together), or
    the key is below the design's minimums (RSA-2048, NIST P-256): one class for the key
    module and the certificate builders, so that a caller catches one thing."""

    code = "key_unsupported"


@error
class BadSignature(AuthenticationFailed):
    code = "bad_signature"

    message: str = field(default="the signature does not verify", kw_only=False)


_RSA_BITS = {KeyAlgorithm.RSA2048: 2048, KeyAlgorithm.RSA3072: 3072}
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


def generate_private_key(alg: KeyAlgorithm) -> PrivateKey:
    if alg is KeyAlgorithm.ECP256:
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS[KeyAlgorithm(alg)])


def private_key_to_pkcs8(key: PrivateKey) -> bytearray:
    """Unencrypted PKCS#8 DER, in a bytearray so the caller can wipe it after sealing."""
    return bytearray(
        key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def load_private_key(pkcs8: bytes | bytearray, *, trusted: bool) -> PrivateKey:
    """Parse PKCS#8 DER into a card key.

    ``trusted=True`` skips RSA key validation (50-90 ms): only for keys this service generated
    and sealed itself, whose integrity AES-GCM has already proved.
    """
    try:
        key = serialization.load_der_private_key(
            bytes(pkcs8), password=None, unsafe_skip_rsa_key_validation=trusted
        )
    except (ValueError, TypeError, UnsupportedAlgorithm) as err:
        raise KeyMalformed("the private key could not be parsed") from err
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise UnsupportedKey(f"unsupported private key type {type(key).__name__}")
    algorithm_of(key.public_key())
    return key


def public_key_der(key: PrivateKey | PublicKey) -> bytes:
    """SubjectPublicKeyInfo DER of a key (or of a private key's public half)."""
    public = (
        key.public_key() if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) else key
    )
    return public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_key_der(der: bytes) -> PublicKey:
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, UnsupportedAlgorithm) as err:
        raise KeyMalformed("the public key could not be parsed") from err
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise UnsupportedKey(f"unsupported public key type {type(key).__name__}")
    algorithm_of(key)
    return key


def algorithm_of(public_key: PublicKey | PrivateKey) -> KeyAlgorithm:
    """Which of cardvault's algorithms a key is; anything else raises UnsupportedKey."""
    if isinstance(public_key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        for alg, bits in _RSA_BITS.items():
            if public_key.key_size == bits:
                return alg
        raise UnsupportedKey(f"RSA keys must be 2048 or 3072 bits, not {public_key.key_size}")
    if isinstance(public_key.curve, ec.SECP256R1):
        return KeyAlgorithm.ECP256
    raise UnsupportedKey(f"elliptic curve {public_key.curve.name} is not supported")


def _hash(hash_alg: str, digest: bytes) -> hashes.HashAlgorithm:
    factory = _HASHES.get(hash_alg)
    if factory is None:
        raise UnsupportedKey(f"hash {hash_alg!r} is not supported (use sha256, sha384, sha512)")
    algorithm = factory()
    if len(digest) != algorithm.digest_size:
        raise InvalidInput(
            f"a {hash_alg} digest is {algorithm.digest_size} bytes, not {len(digest)}"
        )
    return algorithm


def _rsa_padding(
    scheme: SignatureScheme, algorithm: hashes.HashAlgorithm
) -> padding.AsymmetricPadding:
    if scheme is SignatureScheme.RSA_PSS:
        return padding.PSS(mgf=padding.MGF1(algorithm), salt_length=algorithm.digest_size)
    return padding.PKCS1v15()


def _check_scheme(key: PrivateKey | PublicKey, scheme: SignatureScheme) -> SignatureScheme:
    scheme = SignatureScheme(scheme)
    is_rsa = isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey)
    if is_rsa == (scheme is SignatureScheme.ECDSA):
        kind = "an RSA" if is_rsa else "an EC"
        raise UnsupportedKey(f"scheme {scheme.value} does not fit {kind} key")
    return scheme


def sign_digest(
    key: PrivateKey, digest: bytes, *, hash_alg: str = "sha256", scheme: SignatureScheme
) -> bytes:
    """Sign a precomputed digest, as a smartcard signs what the host hashed."""
    scheme = _check_scheme(key, scheme)
    algorithm = _hash(hash_alg, digest)
    prehashed = utils.Prehashed(algorithm)
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(digest, _rsa_padding(scheme, algorithm), prehashed)
    return key.sign(digest, ec.ECDSA(prehashed))


def verify_digest(
    public_key: PublicKey,
    signature: bytes,
    digest: bytes,
    *,
    hash_alg: str = "sha256",
    scheme: SignatureScheme,
) -> None:
    """Check a signature over a digest; raises BadSignature rather than returning False."""
    scheme = _check_scheme(public_key, scheme)
    algorithm = _hash(hash_alg, digest)
    prehashed = utils.Prehashed(algorithm)
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, digest, _rsa_padding(scheme, algorithm), prehashed)
        else:
            public_key.verify(signature, digest, ec.ECDSA(prehashed))
    except InvalidSignature as err:
        raise BadSignature() from err


def sign_message(
    key: PrivateKey, message: bytes, scheme: SignatureScheme, *, hash_alg: str = "sha256"
) -> bytes:
    """Hash ``message`` and sign the digest (convenience for tests and service keys)."""
    factory = _HASHES.get(hash_alg)
    if factory is None:
        raise UnsupportedKey(f"hash {hash_alg!r} is not supported (use sha256, sha384, sha512)")
    hasher = hashes.Hash(factory())
    hasher.update(message)
    return sign_digest(key, hasher.finalize(), hash_alg=hash_alg, scheme=scheme)
