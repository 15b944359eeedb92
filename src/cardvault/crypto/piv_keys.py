"""Private-key operations in the shape PIV's GENERAL AUTHENTICATE asks for (SP 800-73-4 Part 2
§3.2.4) and the public key in the shape GENERATE answers with.

A PIV client pads RSA blocks itself and sends the whole block; the card returns the raw
private-key operation. When the block is a PKCS#1 v1.5 signature over a DigestInfo we know,
we sign it with ``cryptography``'s prehashed API (the result is the same bytes). Anything
else -- PSS blocks OpenSC encodes in software, ciphertexts to decrypt -- needs the raw RSA
operation, which ``cryptography`` does not expose; it is done here with CRT and blinding, and a
final check that the result maps back to the input (a fault would otherwise leak the key).
Python's big integers are not constant-time; the blinding hides the input from timing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from cardvault.crypto.keys import KeyAlgorithm, PrivateKey, algorithm_of, load_public_key_der
from cardvault.errors import InvalidInput

__all__ = [
    "PublicParts",
    "ecdh_shared_secret",
    "ecdsa_sign_hash",
    "public_parts",
    "rsa_private_block",
]

#: DER DigestInfo prefixes (RFC 8017 §9.2 note 1) -> hash
_DIGEST_INFOS: dict[bytes, type[hashes.HashAlgorithm]] = {
    bytes.fromhex("3021300906052b0e03021a05000414"): hashes.SHA1,
    bytes.fromhex("302d300d06096086480165030402040500041c"): hashes.SHA224,
    bytes.fromhex("3031300d060960864801650304020105000420"): hashes.SHA256,
    bytes.fromhex("3041300d060960864801650304020205000430"): hashes.SHA384,
    bytes.fromhex("3051300d060960864801650304020305000440"): hashes.SHA512,
}


@dataclass(frozen=True, kw_only=True)
class PublicParts:
    """A public key as PIV transmits it: RSA modulus and exponent, or an EC point."""

    algorithm: KeyAlgorithm
    modulus: bytes = b""
    exponent: bytes = b""
    point: bytes = b""


def public_parts(spki_der: bytes) -> PublicParts:
    key = load_public_key_der(spki_der)
    algorithm = algorithm_of(key)
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        return PublicParts(
            algorithm=algorithm,
            modulus=numbers.n.to_bytes((key.key_size + 7) // 8, "big"),
            exponent=numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big"),
        )
    point = key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return PublicParts(algorithm=algorithm, point=point)


def rsa_private_block(key: PrivateKey, block: bytes) -> bytes:
    """The RSA private-key operation on a full k-byte block, as a PIV card performs it."""
    if not isinstance(key, rsa.RSAPrivateKey):
        raise InvalidInput("an RSA operation needs an RSA key")
    size = (key.key_size + 7) // 8
    if len(block) != size:
        raise InvalidInput(f"the block must be {size} bytes, not {len(block)}")
    signed = _sign_known_digest_info(key, block)
    return signed if signed is not None else _raw_private(key, block)


def _sign_known_digest_info(key: rsa.RSAPrivateKey, block: bytes) -> bytes | None:
    if block[:2] != b"\x00\x01":
        return None
    separator = block.find(b"\x00", 2)
    if separator < 10 or block[2:separator] != b"\xff" * (separator - 2):
        return None
    payload = block[separator + 1 :]
    for prefix, factory in _DIGEST_INFOS.items():
        algorithm = factory()
        if payload.startswith(prefix) and len(payload) == len(prefix) + algorithm.digest_size:
            digest = payload[len(prefix) :]
            return key.sign(digest, padding.PKCS1v15(), utils.Prehashed(algorithm))
    return None


def _raw_private(key: rsa.RSAPrivateKey, block: bytes) -> bytes:
    numbers = key.private_numbers()
    n, e = numbers.public_numbers.n, numbers.public_numbers.e
    value = int.from_bytes(block, "big")
    if value >= n:
        raise InvalidInput("the block is not smaller than the modulus")
    blind = secrets.randbelow(n - 3) + 2
    blinded = value * pow(blind, e, n) % n
    m1 = pow(blinded, numbers.dmp1, numbers.p)
    m2 = pow(blinded, numbers.dmq1, numbers.q)
    h = numbers.iqmp * (m1 - m2) % numbers.p
    result = (m2 + h * numbers.q) * pow(blind, -1, n) % n
    if pow(result, e, n) != value:
        raise ArithmeticError("the RSA private operation failed its own check")
    return result.to_bytes(len(block), "big")


def ecdsa_sign_hash(key: PrivateKey, hashed: bytes) -> bytes:
    """ECDSA over a hash the client computed; returns DER (X9.62). A hash longer than the field
    is truncated to its leftmost bytes and a shorter one is left-padded with zeros, which is
    what ECDSA does with the hash's integer value anyway (FIPS 186-4 §6.4)."""
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise InvalidInput("ECDSA needs an EC key")
    if not 0 < len(hashed) <= 64:
        raise InvalidInput("the hash must be 1 to 64 bytes")
    size = (key.curve.key_size + 7) // 8
    value = hashed[:size].rjust(size, b"\x00")
    algorithm: hashes.HashAlgorithm = hashes.SHA256() if size == 32 else hashes.SHA384()
    return key.sign(value, ec.ECDSA(utils.Prehashed(algorithm)))


def ecdh_shared_secret(key: PrivateKey, peer_point: bytes) -> bytes:
    """ECDH with an uncompressed point of the same curve; returns the x coordinate."""
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise InvalidInput("ECDH needs an EC key")
    try:
        peer = ec.EllipticCurvePublicKey.from_encoded_point(key.curve, peer_point)
        return key.exchange(ec.ECDH(), peer)
    except ValueError as err:
        raise InvalidInput("the peer's point is not on the key's curve") from err
