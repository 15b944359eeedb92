"""Card keys sealed under a per-card DEK, and the key slots that open it (DESIGN §3.1, §3.2).

Like LUKS: one random 256-bit data-encryption key (DEK) per card seals the card's private keys;
the DEK itself is wrapped once per way of opening the card (passcode, any two of three security
answers, recovery code, a paired device's secret). A passcode is right exactly when its slot
opens; nothing else about it is stored.

Associated data binds every blob to its place: a sealed key to card id ‖ role ‖ version ‖
algorithm, a slot to card id ‖ slot name ‖ generation, a session wrap to the session id. So a
blob copied to another card, slot or role does not open.

Human secrets are normalised before derivation: passcodes with NFKC (NIST SP 800-63B, so
the same passcode typed on different keyboards matches), security answers with
:func:`normalize_answer`.

This module holds the DEK's own kinds of slot (passcode, device, invitation) and session
wraps; the recovery slots are in ``recovery_slots.py`` and the wrapping every slot shares in
``_slots.py``. Both are re-exported here: callers know one module for "the key slots".
"""

from __future__ import annotations

import re
import secrets
import unicodedata

from cardvault.crypto._record import (
    MAX_KEYS,
    MAX_RECORD_BYTES,
    MAX_SLOTS,
    SALT_SIZE,
    CardKeyRecord,
    KeyNotFound,
    KeySlot,
    RecordCorrupt,
    SealedKey,
    SlotKind,
    SlotNotFound,
    check_card_id,
)
from cardvault.crypto._slots import (
    DEK_SIZE,
    WrongSecret,
    argon2,
    check_dek,
    kdf_of,
    make_hkdf_slot,
    make_slot,
    new_dek,
    open_hkdf_slot,
    open_slot,
)
from cardvault.crypto.aead import NONCE_SIZE, TAG_SIZE, SealBroken, aad, open_sealed, seal, wipe
from cardvault.crypto.kdf import Argon2Params
from cardvault.crypto.recovery_slots import (
    RECOVERY_CODE_SLOT,
    RECOVERY_PAIRS,
    make_recovery_code_slot,
    make_recovery_slots,
    new_recovery_code,
    normalize_answer,
    open_recovery_code_slot,
    open_recovery_slots,
    recovery_slot_name,
)
from cardvault.errors import InvalidInput

__all__ = [
    "DEK_SIZE",
    "MAX_KEYS",
    "MAX_RECORD_BYTES",
    "MAX_SLOTS",
    "PASSCODE_SLOT",
    "RECOVERY_CODE_SLOT",
    "RECOVERY_PAIRS",
    "CardKeyRecord",
    "KeyNotFound",
    "KeySlot",
    "RecordCorrupt",
    "SealedKey",
    "SlotKind",
    "SlotNotFound",
    "WrongSecret",
    "device_slot_name",
    "make_device_slot",
    "make_invitation_slot",
    "make_passcode_slot",
    "make_recovery_code_slot",
    "make_recovery_slots",
    "new_dek",
    "new_recovery_code",
    "new_session_key",
    "normalize_answer",
    "open_device_slot",
    "open_invitation_slot",
    "open_no_passcode_slot",
    "open_passcode_slot",
    "open_private_key",
    "open_recovery_code_slot",
    "open_recovery_slots",
    "recovery_slot_name",
    "seal_private_key",
    "unwrap_session",
    "wrap_for_session",
]

SESSION_KEY_SIZE = 32
DEVICE_SECRET_SIZE = 32
PASSCODE_SLOT = "passcode"
INVITATION_SLOT = "invitation"
INVITATION_TOKEN_MIN = 32
_DEVICE_INFO = b"cardvault/device/v1"
_INVITATION_INFO = b"cardvault/invitation/v1"
_DEVICE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


# --- sealed private keys --------------------------------------------------------------------


def _key_aad(card_id: str, role: str, version: int, algorithm: str) -> bytes:
    return aad("cardvault/card-key/v1", card_id, role, version, algorithm)


def seal_private_key(
    dek: bytes | bytearray,
    *,
    card_id: str,
    role: str,
    version: int,
    algorithm: str,
    pkcs8: bytes | bytearray,
) -> SealedKey:
    """Seal a card private key (PKCS#8 DER) under the DEK, bound to card, role and version."""
    check_dek(dek)
    check_card_id(card_id)
    blob = seal(dek, pkcs8, _key_aad(card_id, role, version, algorithm))
    return SealedKey(role=role, version=version, algorithm=algorithm, blob=blob)


def open_private_key(dek: bytes | bytearray, *, card_id: str, sealed: SealedKey) -> bytearray:
    """The PKCS#8 DER of a sealed key; raises SealBroken (IntegrityError) if it does not open."""
    return open_sealed(
        dek, sealed.blob, _key_aad(card_id, sealed.role, sealed.version, sealed.algorithm)
    )


# --- passcode -------------------------------------------------------------------------------


def _passcode_bytes(passcode: str) -> bytearray:
    if not isinstance(passcode, str) or not passcode:
        raise InvalidInput("the passcode is empty")
    return bytearray(unicodedata.normalize("NFKC", passcode).encode("utf-8"))


def make_passcode_slot(
    dek: bytes | bytearray, *, card_id: str, passcode: str, params: Argon2Params, generation: int
) -> KeySlot:
    """The passcode slot: KEK = Argon2id(NFKC(passcode), fresh 16-byte salt)."""
    salt = secrets.token_bytes(SALT_SIZE)
    kek = argon2(_passcode_bytes(passcode), salt, params)
    return make_slot(
        dek,
        kek,
        card_id=card_id,
        name=PASSCODE_SLOT,
        kind=SlotKind.PASSCODE,
        generation=generation,
        salt=salt,
        kdf=params,
    )


def open_passcode_slot(record: CardKeyRecord, passcode: str) -> bytearray:
    """The card's DEK if ``passcode`` is right; WrongSecret otherwise."""
    slot = record.slot(PASSCODE_SLOT)
    kek = argon2(_passcode_bytes(passcode), slot.salt, kdf_of(slot))
    return open_slot(record, slot, kek)


def open_no_passcode_slot(passcode: str, params: Argon2Params) -> None:
    """The work of opening a passcode slot, against no slot: a refusal that must take as
    long as a wrong passcode (DESIGN §3.3) derives the same KEK, with a fresh salt and the
    slot's parameters, and fails to unwrap a random DEK with it."""
    kek = argon2(_passcode_bytes(passcode), secrets.token_bytes(SALT_SIZE), params)
    try:
        wipe(open_sealed(kek, secrets.token_bytes(_DECOY_WRAP_SIZE), b"no slot"))
    except SealBroken:
        pass
    finally:
        wipe(kek)


#: a wrapped DEK's size: nonce, DEK, tag
_DECOY_WRAP_SIZE = NONCE_SIZE + DEK_SIZE + TAG_SIZE


# --- device (biometric unlock) --------------------------------------------------------------


def device_slot_name(device_id: str) -> str:
    if not isinstance(device_id, str) or not _DEVICE_ID.fullmatch(device_id):
        raise InvalidInput("a device id is 1 to 128 letters, digits or . _ : -")
    return f"device-{device_id}"


def _device_secret(device_secret: bytes | bytearray) -> bytearray:
    if len(device_secret) != DEVICE_SECRET_SIZE:
        raise InvalidInput(f"a device secret is {DEVICE_SECRET_SIZE} bytes")
    return bytearray(device_secret)


def make_device_slot(
    dek: bytes | bytearray,
    *,
    card_id: str,
    device_id: str,
    device_secret: bytes | bytearray,
    generation: int,
) -> KeySlot:
    """A device slot: KEK = HKDF-SHA256(device secret, salt); the service never keeps the secret."""
    name = device_slot_name(device_id)
    return make_hkdf_slot(
        dek,
        _device_secret(device_secret),
        info=_DEVICE_INFO,
        card_id=card_id,
        name=name,
        kind=SlotKind.DEVICE,
        generation=generation,
    )


def open_device_slot(
    record: CardKeyRecord, device_id: str, device_secret: bytes | bytearray
) -> bytearray:
    slot = record.slot(device_slot_name(device_id))
    return open_hkdf_slot(record, slot, _device_secret(device_secret), info=_DEVICE_INFO)


# --- invitation (partial enrolment) --------------------------------------------------------


def _invitation_secret(token: bytes | bytearray, code: str) -> bytearray:
    """The link's token (>= 256 random bits) joined to the SMS code: two channels, one key."""
    if len(token) < INVITATION_TOKEN_MIN:
        raise InvalidInput(f"an invitation token is at least {INVITATION_TOKEN_MIN} bytes")
    digits = "".join((code or "").split())
    if not digits.isdigit() or not 6 <= len(digits) <= 10:
        raise InvalidInput("the invitation code is 6 to 10 digits")
    return bytearray(bytes(token) + b"\x00" + digits.encode("ascii"))


def make_invitation_slot(
    dek: bytes | bytearray,
    *,
    card_id: str,
    token: bytes | bytearray,
    code: str,
    generation: int,
) -> KeySlot:
    """The invitation slot: KEK = HKDF-SHA256(link token ‖ 0x00 ‖ SMS code, salt).

    The token is 256 random bits, so no slow KDF is needed; the service stores only the
    token's SHA-256 (in the link row) and never the code, so the slot opens only for
    whoever holds both the email link and the text message.
    """
    return make_hkdf_slot(
        dek,
        _invitation_secret(token, code),
        info=_INVITATION_INFO,
        card_id=card_id,
        name=INVITATION_SLOT,
        kind=SlotKind.INVITATION,
        generation=generation,
    )


def open_invitation_slot(record: CardKeyRecord, token: bytes | bytearray, code: str) -> bytearray:
    """The DEK if the link token and SMS code are right; WrongSecret otherwise."""
    slot = record.slot(INVITATION_SLOT)
    return open_hkdf_slot(record, slot, _invitation_secret(token, code), info=_INVITATION_INFO)


# --- session keys (DESIGN §3.2) -------------------------------------------------------------


def new_session_key() -> bytearray:
    return bytearray(secrets.token_bytes(SESSION_KEY_SIZE))


def _session_aad(session_id: str) -> bytes:
    if not isinstance(session_id, str) or not session_id:
        raise InvalidInput("a session id is needed")
    return aad("cardvault/session/v1", session_id)


def wrap_for_session(dek: bytes | bytearray, sk: bytes | bytearray, *, session_id: str) -> bytes:
    """``wrap(DEK, SK)``: the service stores this; SK goes back to the client only."""
    check_dek(dek)
    if len(sk) != SESSION_KEY_SIZE:
        raise InvalidInput(f"a session key is {SESSION_KEY_SIZE} bytes")
    return seal(sk, dek, _session_aad(session_id))


def unwrap_session(blob: bytes, sk: bytes | bytearray, *, session_id: str) -> bytearray:
    """The DEK of a card session; a wrong SK or session id raises WrongSecret."""
    try:
        return open_sealed(sk, blob, _session_aad(session_id))
    except SealBroken as err:
        raise WrongSecret("the session key does not open this session") from err
