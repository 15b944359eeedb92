"""The card key record's data structures and canonical serialisation (DESIGN §3.1).

Public names are re-exported by :mod:`cardvault.crypto.keyslots`; import them from there.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from cardvault.crypto.kdf import Argon2Params
from cardvault.errors import IntegrityError, InvalidInput, NotFound, error
from cardvault.json_types import JsonObject

FORMAT_VERSION = 1
MAX_RECORD_BYTES = 256 * 1024
MAX_SLOTS = 64
MAX_KEYS = 32
SALT_SIZE = 16
WRAPPED_DEK_SIZE = 12 + 32 + 16  # nonce ‖ DEK ‖ tag
_CARD_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_DEVICE_ID = r"[A-Za-z0-9._:-]{1,128}"
_SLOT_NAMES = {
    "passcode": re.compile("passcode"),
    "recovery": re.compile("recovery-(1-2|1-3|2-3)"),
    "recovery_code": re.compile("recovery-code"),
    "device": re.compile("device-" + _DEVICE_ID),
    "invitation": re.compile("invitation"),
}
_KEY_ROLE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_KEY_ALGORITHMS = frozenset({"rsa2048", "rsa3072", "ecp256"})


@error
class SlotNotFound(NotFound):
    code = "slot_not_found"
    slot: str | None = None


@error
class KeyNotFound(NotFound):
    code = "key_not_found"
    role: str


class RecordCorrupt(IntegrityError):
    """A stored card key record does not parse: it was damaged or is not ours."""

    code = "record_corrupt"


class SlotKind(StrEnum):
    PASSCODE = "passcode"
    RECOVERY = "recovery"
    RECOVERY_CODE = "recovery_code"
    DEVICE = "device"
    #: partial enrolment: opened by the invitation link's token plus the code sent by SMS
    INVITATION = "invitation"


def check_card_id(card_id: str) -> None:
    if not isinstance(card_id, str) or not _CARD_ID.fullmatch(card_id):
        raise InvalidInput("a card id is 1 to 128 letters, digits or . _ : -")


@dataclass(frozen=True, kw_only=True)
class KeySlot:
    """One way of opening a card: the DEK wrapped under a key-encryption key (like a LUKS slot).

    ``kdf`` holds the Argon2id parameters for slots opened by a human secret and is ``None``
    for slots whose secret is already high-entropy (device secret, recovery code).
    """

    name: str
    kind: SlotKind
    generation: int
    salt: bytes
    kdf: Argon2Params | None
    wrapped_dek: bytes

    def __post_init__(self) -> None:
        pattern = _SLOT_NAMES.get(self.kind)
        if pattern is None or not isinstance(self.name, str) or not pattern.fullmatch(self.name):
            raise InvalidInput(f"slot name {self.name!r} does not fit kind {self.kind!r}")
        if type(self.generation) is not int or not 0 <= self.generation < 2**53:
            raise InvalidInput("slot generation must be a non-negative integer")
        if not isinstance(self.salt, bytes) or len(self.salt) != SALT_SIZE:
            raise InvalidInput(f"slot salt must be {SALT_SIZE} bytes")
        needs_kdf = self.kind in (SlotKind.PASSCODE, SlotKind.RECOVERY)
        if needs_kdf != isinstance(self.kdf, Argon2Params):
            raise InvalidInput(f"{self.kind} slots {'need' if needs_kdf else 'take no'} kdf")
        if not isinstance(self.wrapped_dek, bytes) or len(self.wrapped_dek) != WRAPPED_DEK_SIZE:
            raise InvalidInput(f"a wrapped DEK is {WRAPPED_DEK_SIZE} bytes")


@dataclass(frozen=True, kw_only=True)
class SealedKey:
    """A card private key (PKCS#8 DER) sealed with AES-256-GCM under the card's DEK."""

    role: str
    version: int
    algorithm: str
    blob: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.role, str) or not _KEY_ROLE.fullmatch(self.role):
            raise InvalidInput(f"key role {self.role!r} is not valid")
        if type(self.version) is not int or not 0 <= self.version < 2**53:
            raise InvalidInput("key version must be a non-negative integer")
        if self.algorithm not in _KEY_ALGORITHMS:
            raise InvalidInput(f"key algorithm {self.algorithm!r} is not supported")
        if not isinstance(self.blob, bytes) or len(self.blob) < 12 + 16:
            raise InvalidInput("a sealed key blob is too short")


@dataclass(frozen=True, kw_only=True)
class CardKeyRecord:
    """Everything that opens and uses one card: its sealed keys and its key slots.

    Immutable: ``with_slot``/``without_slot`` return a new record; slots are kept sorted by
    name and keys by (role, version). The whole record is sealed
    again under the master key by the key store (the outer seal).
    """

    card_id: str
    keys: tuple[SealedKey, ...]
    slots: tuple[KeySlot, ...]

    def __post_init__(self) -> None:
        check_card_id(self.card_id)
        # Kept sorted so that equal records compare equal and serialise identically.
        object.__setattr__(self, "slots", tuple(sorted(self.slots, key=lambda s: s.name)))
        object.__setattr__(
            self, "keys", tuple(sorted(self.keys, key=lambda k: (k.role, k.version)))
        )
        names = [s.name for s in self.slots]
        if len(set(names)) != len(names):
            raise InvalidInput("slot names must be unique")
        key_ids = [(k.role, k.version) for k in self.keys]
        if len(set(key_ids)) != len(key_ids):
            raise InvalidInput("a key role and version may appear only once")
        if len(self.slots) > MAX_SLOTS or len(self.keys) > MAX_KEYS:
            raise InvalidInput("too many slots or keys in one card record")

    def slot(self, name: str) -> KeySlot:
        for slot in self.slots:
            if slot.name == name:
                return slot
        raise SlotNotFound(f"the card has no {name!r} key slot", slot=name)

    def key(self, role: str, version: int | None = None) -> SealedKey:
        """The key with this role: the given version, or else the newest."""
        matching = [k for k in self.keys if k.role == role]
        if version is not None:
            matching = [k for k in matching if k.version == version]
        if not matching:
            raise KeyNotFound(f"the card has no {role!r} key", role=role)
        return max(matching, key=lambda k: k.version)

    def with_slot(self, slot: KeySlot) -> CardKeyRecord:
        """A new record where ``slot`` replaces the slot of the same name, or is added."""
        others = tuple(s for s in self.slots if s.name != slot.name)
        return replace(self, slots=(*others, slot))

    def without_slot(self, name: str) -> CardKeyRecord:
        self.slot(name)
        return replace(self, slots=tuple(s for s in self.slots if s.name != name))

    def with_key(self, key: SealedKey) -> CardKeyRecord:
        """A new record where ``key`` replaces the key of the same role and version, or is added."""
        others = tuple(k for k in self.keys if (k.role, k.version) != (key.role, key.version))
        return replace(self, keys=(*others, key))

    def to_bytes(self) -> bytes:
        """Canonical serialisation: sorted-key compact JSON, bytes as base64, sorted lists."""
        body = {
            "format": FORMAT_VERSION,
            "card_id": self.card_id,
            "keys": [_key_dict(k) for k in self.keys],
            "slots": [_slot_dict(s) for s in self.slots],
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> CardKeyRecord:
        """Parse a record strictly; anything but the canonical form raises RecordCorrupt."""
        if not isinstance(data, bytes | bytearray) or len(data) > MAX_RECORD_BYTES:
            raise RecordCorrupt("the card key record is missing or too large")
        try:
            record = _parse(json.loads(data, object_pairs_hook=_no_duplicates))
        except (ValueError, TypeError, KeyError, InvalidInput) as err:
            raise RecordCorrupt("the card key record is damaged") from err
        if record.to_bytes() != bytes(data):
            raise RecordCorrupt("the card key record is not in canonical form")
        return record


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise TypeError("expected base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as err:
        raise ValueError("bad base64") from err


def _key_dict(key: SealedKey) -> JsonObject:
    return {
        "role": key.role,
        "version": key.version,
        "algorithm": key.algorithm,
        "blob": _b64(key.blob),
    }


def _slot_dict(slot: KeySlot) -> JsonObject:
    return {
        "name": slot.name,
        "kind": slot.kind.value,
        "generation": slot.generation,
        "salt": _b64(slot.salt),
        "kdf": {**slot.kdf.as_dict()} if slot.kdf else None,
        "wrapped_dek": _b64(slot.wrapped_dek),
    }


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate key in JSON object")
    return out


def _fields(obj: Any, names: set[str]) -> dict[str, Any]:
    if not isinstance(obj, dict) or set(obj) != names:
        raise ValueError(f"expected exactly the fields {sorted(names)}")
    return obj


def _parse(obj: Any) -> CardKeyRecord:
    body = _fields(obj, {"format", "card_id", "keys", "slots"})
    if body["format"] != FORMAT_VERSION or not isinstance(body["keys"], list):
        raise ValueError("unknown record format")
    if not isinstance(body["slots"], list):
        raise ValueError("slots must be a list")
    return CardKeyRecord(
        card_id=body["card_id"],
        keys=tuple(_parse_key(k) for k in body["keys"]),
        slots=tuple(_parse_slot(s) for s in body["slots"]),
    )


def _parse_key(obj: Any) -> SealedKey:
    k = _fields(obj, {"role", "version", "algorithm", "blob"})
    return SealedKey(
        role=k["role"], version=k["version"], algorithm=k["algorithm"], blob=_unb64(k["blob"])
    )


def _parse_slot(obj: Any) -> KeySlot:
    s = _fields(obj, {"name", "kind", "generation", "salt", "kdf", "wrapped_dek"})
    return KeySlot(
        name=s["name"],
        kind=SlotKind(s["kind"]),
        generation=s["generation"],
        salt=_unb64(s["salt"]),
        kdf=None if s["kdf"] is None else Argon2Params.from_dict(s["kdf"]),
        wrapped_dek=_unb64(s["wrapped_dek"]),
    )
