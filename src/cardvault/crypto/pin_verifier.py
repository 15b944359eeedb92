"""Verifiers for the short reference data of the PIV channel: the card PIN and PUK (DESIGN §3.8).

A card PIN opens no key slot; the service only needs to tell a right PIN from a wrong one.
It keeps ``Argon2id(PIN, salt)`` and compares in constant time. Six to eight digits are few,
so the verifier is worth little on its own: the service keeps it sealed under the master key
(no offline guessing from a database dump), counts wrong tries on the card and accepts the PIN
only inside a card session that the strong passcode and a second factor opened.
"""

from __future__ import annotations

import base64
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

from cardvault.crypto.aead import wipe
from cardvault.crypto.kdf import Argon2Params, derive_key
from cardvault.errors import AuthenticationFailed, InvalidInput, error
from cardvault.json_types import JsonObject

__all__ = ["ReferenceMismatch", "Verifier", "check_verifier", "make_verifier"]

SALT_BYTES = 16


@error
class ReferenceMismatch(AuthenticationFailed):
    code = "reference_mismatch"

    message: str = field(default="the value does not match", init=False)


@dataclass(frozen=True, kw_only=True)
class Verifier:
    salt: bytes
    params: Argon2Params
    digest: bytes

    def as_dict(self) -> JsonObject:
        return {
            "salt": base64.b64encode(self.salt).decode(),
            "params": {**self.params.as_dict()},
            "digest": base64.b64encode(self.digest).decode(),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Verifier:
        if not isinstance(data, dict) or set(data) != {"salt", "params", "digest"}:
            raise InvalidInput("a verifier has salt, params and digest")
        return cls(
            salt=base64.b64decode(data["salt"], validate=True),
            params=Argon2Params.from_dict(data["params"]),
            digest=base64.b64decode(data["digest"], validate=True),
        )


def make_verifier(value: bytes, params: Argon2Params) -> Verifier:
    salt = secrets.token_bytes(SALT_BYTES)
    derived = derive_key(value, salt, params)
    try:
        return Verifier(salt=salt, params=params, digest=bytes(derived))
    finally:
        wipe(derived)


def check_verifier(verifier: Verifier, value: bytes) -> None:
    """Raise ReferenceMismatch unless ``value`` is the one the verifier was made from."""
    derived = derive_key(value, verifier.salt, verifier.params)
    try:
        if not hmac.compare_digest(bytes(derived), verifier.digest):
            raise ReferenceMismatch()
    finally:
        wipe(derived)
