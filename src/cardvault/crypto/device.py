"""The device protocol's cryptography (docs/protocols/device.md §3): P-256 device keys,
the exact bytes a device signs, and the sealed box that carries a QR sign-in to the PC.

A paired phone holds an ECDSA P-256 key pair (in the Secure Enclave / Android Keystore on a
real phone). It signs three kinds of statement, each a UTF-8 text whose first line names
it, so that a signature made for one can never be taken for another:

* a request: method, path, timestamp, nonce and the SHA-256 of the body;
* a push answer: challenge id, the number the holder typed, and the decision;
* the pairing proof: the pairing token and the new public key (proof of possession).

Signatures are DER-encoded ECDSA with SHA-256, which is what iOS
(``ecdsaSignatureMessageX962SHA256``) and Android (``SHA256withECDSA``) produce natively.
Binary values travel as unpadded base64url.

The QR sign-in's result (session token and session key) goes to the PC as a compact JWE
``ECDH-ES`` / ``A256GCM`` to an ephemeral P-256 key the PC made for that one request, so
the service never stores the session key in a form it could read back.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import field
from typing import cast

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from cardvault import strict_json
from cardvault.crypto.envelope import jwk_json
from cardvault.errors import AuthenticationFailed, InvalidInput, error
from cardvault.json_types import JsonObject, JsonValue

__all__ = [
    "ANSWER_CONTEXT",
    "PAIR_CONTEXT",
    "REQUEST_CONTEXT",
    "BadDeviceSignature",
    "DeviceKey",
    "answer_signing_input",
    "b64url",
    "body_digest",
    "check_public_key",
    "new_box_key",
    "open_box",
    "pairing_signing_input",
    "request_signing_input",
    "seal_box",
    "unb64url",
    "verify_device_signature",
]

REQUEST_CONTEXT = "cardvault-device-request/v1"
ANSWER_CONTEXT = "cardvault-push-answer/v1"
PAIR_CONTEXT = "cardvault-device-pair/v1"
BOX_ALG = "ECDH-ES"
BOX_ENC = "A256GCM"
MAX_SIGNATURE_BYTES = 80  # a DER P-256 signature is at most 72 bytes


@error
class BadDeviceSignature(AuthenticationFailed):
    code = "device_signature_invalid"

    message: str = field(default="The device signature does not verify.", kw_only=False)


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def unb64url(text: str, what: str = "value") -> bytes:
    """Decode unpadded (or padded) base64url; anything else is InvalidInput."""
    if not isinstance(text, str) or len(text) > 4096:
        raise InvalidInput(f"The {what} is not base64url text.")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(f"The {what} is not base64url text.") from exc


# --- what is signed -------------------------------------------------------------------------


def body_digest(body: bytes) -> str:
    return b64url(hashlib.sha256(body).digest())


def request_signing_input(
    *, method: str, path: str, timestamp: int, nonce: str, body: bytes
) -> bytes:
    """The bytes a device signs for one HTTP request (path includes any ``?query``)."""
    lines = (REQUEST_CONTEXT, method.upper(), path, str(timestamp), nonce, body_digest(body))
    return "\n".join(lines).encode("utf-8")


def answer_signing_input(*, challenge_id: str, number: str, decision: str) -> bytes:
    """The bytes a device signs for its answer to a push challenge (number may be empty)."""
    return "\n".join((ANSWER_CONTEXT, challenge_id, number, decision)).encode("utf-8")


def pairing_signing_input(*, token: str, public_key: str) -> bytes:
    """Proof that the pairing device holds the private half of ``public_key`` (base64url)."""
    return "\n".join((PAIR_CONTEXT, token, public_key)).encode("utf-8")


# --- keys and signatures --------------------------------------------------------------------


def check_public_key(der: bytes) -> ec.EllipticCurvePublicKey:
    """A device public key: SubjectPublicKeyInfo DER of a P-256 key, nothing else."""
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InvalidInput("The device public key is not a DER SubjectPublicKeyInfo.") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise InvalidInput("The device key must be an ECDSA P-256 key.")
    return key


def verify_device_signature(public_key_der: bytes, message: bytes, signature: bytes) -> None:
    """Raise BadDeviceSignature unless ``signature`` is the device's over ``message``."""
    key = check_public_key(public_key_der)
    if not signature or len(signature) > MAX_SIGNATURE_BYTES:
        raise BadDeviceSignature()
    try:
        key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise BadDeviceSignature() from exc


class DeviceKey:
    """The phone's side: a P-256 key pair, kept by the app (here as PKCS#8 PEM)."""

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(key.curve, ec.SECP256R1):
            raise InvalidInput("A device key is a P-256 key.")
        self._key = key

    @classmethod
    def generate(cls) -> DeviceKey:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_pem(cls, pem: bytes) -> DeviceKey:
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise InvalidInput("The device key file is damaged.") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise InvalidInput("The device key file does not hold an EC key.")
        return cls(key)

    def to_pem(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def public_der(self) -> bytes:
        return self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message, ec.ECDSA(hashes.SHA256()))


# --- the sealed box for QR sign-in ----------------------------------------------------------


class BoxKey:
    """The PC's ephemeral ECDH key for one QR sign-in."""

    def __init__(self, key: ECKey) -> None:
        self._key = key

    def public_jwk(self) -> JsonObject:
        return jwk_json(self._key.as_dict(private=False))

    def open(self, token: str) -> JsonObject:
        registry = jwe.JWERegistry(algorithms=[BOX_ALG, BOX_ENC])
        try:
            plain = jwe.decrypt_compact(token, self._key, registry=registry).plaintext
        except (JoseError, ValueError) as exc:
            raise AuthenticationFailed("The sign-in result does not decrypt.") from exc
        try:
            data = strict_json.loads(plain or b"null", what="The sign-in result")
        except InvalidInput as exc:
            raise AuthenticationFailed(exc.message) from None
        if not isinstance(data, dict):
            raise AuthenticationFailed("The sign-in result is not a JSON object.")
        return data


def new_box_key() -> BoxKey:
    return BoxKey(ECKey.generate_key("P-256", private=True))


def _box_public(public_jwk: Mapping[str, JsonValue]) -> ECKey:
    if public_jwk.get("kty") != "EC" or public_jwk.get("crv") != "P-256":
        raise InvalidInput("The PC's key must be a P-256 EC JWK.")
    try:
        members = {k: public_jwk[k] for k in ("kty", "crv", "x", "y")}
        return ECKey.import_key(cast("dict[str, str | list[str]]", members))  # joserfc checks
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise InvalidInput("The PC's key is not a valid EC JWK.") from exc


def check_box_key(public_jwk: Mapping[str, JsonValue]) -> JsonObject:
    """Validate the PC's public JWK; returns only its public members."""
    return jwk_json(_box_public(public_jwk).as_dict(private=False))


def seal_box(public_jwk: Mapping[str, JsonValue], claims: Mapping[str, JsonValue]) -> str:
    """Service side: a compact JWE (ECDH-ES, A256GCM) only the PC's key opens."""
    header = {"alg": BOX_ALG, "enc": BOX_ENC}
    payload = json.dumps(dict(claims), separators=(",", ":")).encode()
    return jwe.encrypt_compact(
        header, payload, _box_public(public_jwk), algorithms=[*header.values()]
    )


def open_box(key: BoxKey, token: str) -> JsonObject:
    return key.open(token)
