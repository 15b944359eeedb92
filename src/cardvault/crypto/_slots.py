"""What every key slot shares: the DEK, and wrapping it under a key-encryption key (KEK).

A slot is the DEK sealed under a KEK derived from one secret, bound by associated data to
card id ‖ slot name ‖ generation (crypto/keyslots.py says why). The kinds of slot differ only
in the secret and its derivation; they live in keyslots.py and recovery_slots.py.
"""

from __future__ import annotations

import secrets
from dataclasses import field

from cardvault.crypto._record import (
    SALT_SIZE,
    CardKeyRecord,
    KeySlot,
    RecordCorrupt,
    SlotKind,
    check_card_id,
)
from cardvault.crypto.aead import SealBroken, aad, open_sealed, seal, wipe
from cardvault.crypto.kdf import Argon2Params, derive_key, hkdf_key
from cardvault.errors import AuthenticationFailed, InvalidInput, error

DEK_SIZE = 32


@error
class WrongSecret(AuthenticationFailed):
    """The passcode, answers, recovery code, device secret or session key did not open it."""

    code = "wrong_secret"

    message: str = field(default="the secret given does not open this card", kw_only=False)


def new_dek() -> bytearray:
    return bytearray(secrets.token_bytes(DEK_SIZE))


def check_dek(dek: bytes | bytearray) -> None:
    if len(dek) != DEK_SIZE:
        raise InvalidInput(f"a DEK is {DEK_SIZE} bytes")


def _slot_aad(card_id: str, name: str, generation: int) -> bytes:
    return aad("cardvault/key-slot/v1", card_id, name, generation)


def make_slot(
    dek: bytes | bytearray,
    kek: bytearray,
    *,
    card_id: str,
    name: str,
    kind: SlotKind,
    generation: int,
    salt: bytes,
    kdf: Argon2Params | None,
) -> KeySlot:
    """Wrap the DEK under ``kek`` (wiped afterwards) into a slot bound to its card and name."""
    check_dek(dek)
    check_card_id(card_id)
    try:
        wrapped = seal(kek, dek, _slot_aad(card_id, name, generation))
    finally:
        wipe(kek)
    return KeySlot(
        name=name, kind=kind, generation=generation, salt=salt, kdf=kdf, wrapped_dek=wrapped
    )


def open_slot(record: CardKeyRecord, slot: KeySlot, kek: bytearray) -> bytearray:
    """Unwrap the DEK from ``slot`` with ``kek`` (wiped afterwards); failure is WrongSecret."""
    try:
        return open_sealed(
            kek, slot.wrapped_dek, _slot_aad(record.card_id, slot.name, slot.generation)
        )
    except SealBroken as err:
        raise WrongSecret() from err
    finally:
        wipe(kek)


def argon2(secret: bytearray, salt: bytes, params: Argon2Params) -> bytearray:
    try:
        return derive_key(secret, salt, params)
    finally:
        wipe(secret)


def kdf_of(slot: KeySlot) -> Argon2Params:
    if slot.kdf is None:  # KeySlot's own checks make this unreachable for these kinds
        raise RecordCorrupt(f"slot {slot.name!r} has no KDF parameters")
    return slot.kdf


def hkdf(secret: bytearray, salt: bytes, info: bytes) -> bytearray:
    try:
        return hkdf_key(secret, salt, info)
    finally:
        wipe(secret)


def make_hkdf_slot(
    dek: bytes | bytearray,
    secret: bytearray,
    *,
    info: bytes,
    card_id: str,
    name: str,
    kind: SlotKind,
    generation: int,
) -> KeySlot:
    """A slot for a secret with full entropy (a device secret, a recovery code, an invitation
    token): KEK = HKDF-SHA256(secret, fresh salt, info); ``secret`` is wiped."""
    salt = secrets.token_bytes(SALT_SIZE)
    return make_slot(
        dek,
        hkdf(secret, salt, info),
        card_id=card_id,
        name=name,
        kind=kind,
        generation=generation,
        salt=salt,
        kdf=None,
    )


def open_hkdf_slot(
    record: CardKeyRecord, slot: KeySlot, secret: bytearray, *, info: bytes
) -> bytearray:
    """The DEK from a slot made by :func:`make_hkdf_slot`; WrongSecret if ``secret`` is not it."""
    return open_slot(record, slot, hkdf(secret, slot.salt, info))
