"""Signing X.509 structures with a CA key that lives elsewhere (an HSM over PKCS#11).

``cryptography``'s builders sign only with keys in its own memory. A certificate or CRL is
``SEQUENCE { tbs, signatureAlgorithm, signatureValue }`` (RFC 5280 §4.1, §5.1), and the
algorithm identifier is inside the *tbs* too, so: the builder signs once with a stand-in
key of the same kind (same AlgorithmIdentifier: sha256WithRSAEncryption has no key size,
ecdsa-with-SHA256 no curve), the outside key signs the stand-in's tbs bytes, and the
signature value is swapped. The result is checked against the outside key's public key
before it is returned, so a token that signs with the wrong key or mechanism is caught here
rather than by a relying party.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from typing import Protocol, TypeAlias, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from cardvault.errors import NotSetUp

PublicKey: TypeAlias = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
Hash: TypeAlias = hashes.SHA256 | hashes.SHA384 | hashes.SHA512
HashAlgorithm: TypeAlias = hashes.HashAlgorithm
_SEQUENCE, _BIT_STRING = 0x30, 0x03
_Signed = TypeVar("_Signed", x509.Certificate, x509.CertificateRevocationList)


class ExternalKey(Protocol):
    """A private key held outside this process: it shows its public key and signs bytes
    (RSA: PKCS#1 v1.5 over the hash; ECDSA: the DER ``Ecdsa-Sig-Value``)."""

    def public_key(self) -> PublicKey: ...

    def sign(self, data: bytes, algorithm: hashes.HashAlgorithm) -> bytes: ...


class ExternalSignatureInvalid(NotSetUp):
    """The outside key returned a signature its own public key does not verify: the key
    provider is not what it should be (an operator's task; HTTP 502 in ``web/errors.py``)."""

    code = "external_signature_invalid"


def sign_certificate(
    builder: x509.CertificateBuilder, key: ExternalKey, algorithm: Hash
) -> x509.Certificate:
    """The builder's certificate, signed by the outside key."""
    return _sign(builder.sign, x509.load_der_x509_certificate, _certificate_tbs, key, algorithm)


def sign_crl(
    builder: x509.CertificateRevocationListBuilder,
    key: ExternalKey,
    algorithm: Hash,
) -> x509.CertificateRevocationList:
    """The builder's CRL, signed by the outside key."""
    return _sign(builder.sign, x509.load_der_x509_crl, _crl_tbs, key, algorithm)


def _sign(
    sign: Callable[[rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, Hash], _Signed],
    load: Callable[[bytes], _Signed],
    tbs: Callable[[_Signed], bytes],
    key: ExternalKey,
    algorithm: Hash,
) -> _Signed:
    """Signed by the stand-in, the signature swapped for the outside key's over the same
    tbs bytes, and checked (see the module's docstring)."""
    draft = sign(_stand_in(key.public_key()), algorithm)
    der = _swap_signature(
        draft.public_bytes(serialization.Encoding.DER), key.sign(tbs(draft), algorithm)
    )
    signed = load(der)
    check_signature(key.public_key(), signed.signature, tbs(signed), algorithm)
    return signed


def _certificate_tbs(cert: x509.Certificate) -> bytes:
    return cert.tbs_certificate_bytes


def _crl_tbs(crl: x509.CertificateRevocationList) -> bytes:
    return crl.tbs_certlist_bytes


def check_signature(
    public: PublicKey, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm
) -> None:
    """ExternalSignatureInvalid unless ``signature`` is ``public``'s over ``data``."""
    try:
        if isinstance(public, rsa.RSAPublicKey):
            public.verify(signature, data, padding.PKCS1v15(), algorithm)
        else:
            public.verify(signature, data, ec.ECDSA(algorithm))
    except InvalidSignature as exc:
        raise ExternalSignatureInvalid(
            "The CA key in the HSM returned a signature that its public key does not verify.",
            remedy="Check that the token's key is the CA certificate's key (ca-key.pkcs11.json).",
        ) from exc


def prove(key: ExternalKey) -> None:
    """Have the key sign a random message and check it: the key is there and is the one
    its public key says (ExternalSignatureInvalid otherwise)."""
    probe = secrets.token_bytes(32)
    check_signature(key.public_key(), key.sign(probe, hashes.SHA256()), probe, hashes.SHA256())


# -- what a PKCS#11 token needs around its C_Sign ----------------------------------------


def is_rsa(public: PublicKey) -> bool:
    return isinstance(public, rsa.RSAPublicKey)


def rsa_public_key(modulus: int, exponent: int) -> PublicKey:
    """The public half of a key the token generated (CKA_MODULUS, CKA_PUBLIC_EXPONENT)."""
    return rsa.RSAPublicNumbers(exponent, modulus).public_key()


def digest(data: bytes, algorithm: hashes.HashAlgorithm) -> bytes:
    """The hash a raw CKM_ECDSA signs (tokens differ in which hash-and-sign ECDSA they have)."""
    h = hashes.Hash(algorithm)
    h.update(data)
    return h.finalize()


def ecdsa_der(raw: bytes) -> bytes:
    """PKCS#11's ECDSA signature (r ‖ s, each the curve's size) as X.509's DER sequence."""
    half = len(raw) // 2
    return encode_dss_signature(
        int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
    )


def _stand_in(public: PublicKey) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    """A throw-away key of the same kind; its signature never leaves this module."""
    if isinstance(public, rsa.RSAPublicKey):
        return _rsa_stand_in()
    return _ec_stand_in(public.curve.name)


@functools.cache
def _rsa_stand_in() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@functools.cache
def _ec_stand_in(curve_name: str) -> ec.EllipticCurvePrivateKey:
    curves = {c.name: c for c in (ec.SECP256R1(), ec.SECP384R1(), ec.SECP521R1())}
    return ec.generate_private_key(curves[curve_name])


def _swap_signature(der: bytes, signature: bytes) -> bytes:
    """``SEQUENCE { tbs, algorithm, BIT STRING }`` with a new BIT STRING."""
    body, _ = _tlv(der, 0, _SEQUENCE)
    tbs_end = _tlv(der, body, _SEQUENCE)[1]
    algorithm_end = _tlv(der, tbs_end, _SEQUENCE)[1]
    value = _encode(_BIT_STRING, b"\x00" + signature)
    return _encode(_SEQUENCE, der[body:algorithm_end] + value)


def _tlv(der: bytes, at: int, tag: int) -> tuple[int, int]:
    """(where the contents start, where the element ends) of the DER element at ``at``."""
    if der[at] != tag:
        raise ValueError("unexpected DER tag")
    first = der[at + 1]
    if first < 0x80:
        return at + 2, at + 2 + first
    count = first & 0x7F
    length = int.from_bytes(der[at + 2 : at + 2 + count], "big")
    start = at + 2 + count
    return start, start + length


def _encode(tag: int, contents: bytes) -> bytes:
    length = len(contents)
    if length < 0x80:
        return bytes([tag, length]) + contents
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + contents
