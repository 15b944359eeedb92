"""Key derivation: Argon2id for human secrets, HKDF-SHA256 for high-entropy ones (DESIGN §3.1).

Argon2id parameters are stored with every key slot, so they can be raised later without
invalidating existing slots. The default is OWASP's current minimum for Argon2id
(m = 19 MiB, t = 2, p = 1).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from argon2.low_level import Type, hash_secret_raw
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from cardvault.errors import InvalidInput

__all__ = ["DEFAULT_ARGON2", "KEY_SIZE", "Argon2Params", "derive_key", "hkdf_key"]

KEY_SIZE = 32
_LIMITS = {  # (minimum, maximum); the maxima only stop absurd stored values from DoS-ing us
    "time_cost": (1, 64),
    "memory_kib": (8, 4 * 1024 * 1024),
    "parallelism": (1, 64),
}


@dataclass(frozen=True, kw_only=True)
class Argon2Params:
    """Argon2id cost parameters (RFC 9106), stored per key slot."""

    time_cost: int = 2
    memory_kib: int = 19456
    parallelism: int = 1

    def __post_init__(self) -> None:
        for name, (low, high) in _LIMITS.items():
            value = getattr(self, name)
            if type(value) is not int or not low <= value <= high:
                raise InvalidInput(f"Argon2 {name} must be an integer in {low}..{high}")
        if self.memory_kib < 8 * self.parallelism:
            raise InvalidInput("Argon2 memory_kib must be at least 8 x parallelism")

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Argon2Params:
        """Parse stored parameters strictly: exactly the three integer fields."""
        if not isinstance(data, dict) or set(data) != set(_LIMITS):
            raise InvalidInput("Argon2 parameters must have time_cost, memory_kib, parallelism")
        return cls(**data)


DEFAULT_ARGON2 = Argon2Params()


def derive_key(secret: bytes | bytearray, salt: bytes, params: Argon2Params) -> bytearray:
    """Stretch a human secret (passcode, answers) into a 32-byte key with Argon2id."""
    if len(salt) < 16:
        raise InvalidInput("Argon2 salt must be at least 16 bytes")
    raw = hash_secret_raw(
        bytes(secret),
        salt,
        time_cost=params.time_cost,
        memory_cost=params.memory_kib,
        parallelism=params.parallelism,
        hash_len=KEY_SIZE,
        type=Type.ID,
    )
    return bytearray(raw)


def hkdf_key(secret: bytes | bytearray, salt: bytes, info: bytes) -> bytearray:
    """Derive a 32-byte key from a high-entropy secret (device secret) with HKDF-SHA256."""
    out = bytearray(KEY_SIZE)
    HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=salt, info=info).derive_into(secret, out)
    return out
