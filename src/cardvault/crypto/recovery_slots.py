"""The slots that open a card when its passcode is lost: any two of three security answers,
and the recovery code (DESIGN §3.2). Human answers are normalised before derivation
(:func:`normalize_answer`), so "Paris " and "paris" open the same slot.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import unicodedata
from collections.abc import Mapping, Sequence

from cardvault.crypto._record import SALT_SIZE, CardKeyRecord, KeySlot, SlotKind, SlotNotFound
from cardvault.crypto._slots import (
    WrongSecret,
    argon2,
    kdf_of,
    make_hkdf_slot,
    make_slot,
    open_hkdf_slot,
    open_slot,
)
from cardvault.crypto.kdf import Argon2Params
from cardvault.errors import InvalidInput, error

__all__ = [
    "RECOVERY_CODE_SLOT",
    "RECOVERY_PAIRS",
    "make_recovery_code_slot",
    "make_recovery_slots",
    "new_recovery_code",
    "normalize_answer",
    "open_recovery_code_slot",
    "open_recovery_slots",
    "recovery_slot_name",
]

RECOVERY_CODE_BYTES = 20  # 160 bits: 32 base32 characters in 8 groups of 4
RECOVERY_CODE_SLOT = "recovery-code"
_RECOVERY_CODE_INFO = b"cardvault/recovery-code/v1"
RECOVERY_PAIRS: tuple[tuple[int, int], ...] = ((1, 2), (1, 3), (2, 3))


@error
class EmptyAnswer(InvalidInput):
    """A security answer is empty (once normalised); ``question`` is its number, from 1."""

    question: int


def normalize_answer(answer: str) -> str:
    """NFKC, casefold, collapse runs of white space to one space, trim."""
    folded = unicodedata.normalize("NFKC", answer).casefold()
    return " ".join(unicodedata.normalize("NFKC", folded).split())


def recovery_slot_name(i: int, j: int) -> str:
    return f"recovery-{i}-{j}"


def _answer_pair(a: str, b: str) -> bytearray:
    return bytearray(
        normalize_answer(a).encode("utf-8") + b"\x00" + normalize_answer(b).encode("utf-8")
    )


def make_recovery_slots(
    dek: bytes | bytearray,
    *,
    card_id: str,
    answers: Sequence[str],
    params: Argon2Params,
    generation: int,
) -> tuple[KeySlot, ...]:
    """Three slots, one per pair of answers {1,2}, {1,3}, {2,3}: any two answers open the card."""
    if isinstance(answers, str) or len(answers) != 3:
        raise InvalidInput("exactly three security answers are needed")
    for number, answer in enumerate(answers, start=1):
        if not isinstance(answer, str) or not normalize_answer(answer):
            raise EmptyAnswer(f"security answer {number} is empty", question=number)
    slots = []
    for i, j in RECOVERY_PAIRS:
        salt = secrets.token_bytes(SALT_SIZE)
        kek = argon2(_answer_pair(answers[i - 1], answers[j - 1]), salt, params)
        slots.append(
            make_slot(
                dek,
                kek,
                card_id=card_id,
                name=recovery_slot_name(i, j),
                kind=SlotKind.RECOVERY,
                generation=generation,
                salt=salt,
                kdf=params,
            )
        )
    return tuple(slots)


def open_recovery_slots(record: CardKeyRecord, answers: Mapping[int, str]) -> bytearray:
    """The DEK if any two of the given answers (keyed by question 1..3) are right.

    Tries each pair whose answers were both given and whose slot exists; raises SlotNotFound
    when the card has none of those slots, WrongSecret when none of them opens.
    """
    if not set(answers) <= {1, 2, 3} or len(answers) < 2:
        raise InvalidInput("give the answers to at least two of the questions 1, 2 and 3")
    names = {recovery_slot_name(i, j): (i, j) for i, j in RECOVERY_PAIRS if {i, j} <= set(answers)}
    slots = [s for s in record.slots if s.name in names]
    if not slots:
        raise SlotNotFound("the card has no recovery slots for these questions")
    for slot in slots:
        i, j = names[slot.name]
        kek = argon2(_answer_pair(answers[i], answers[j]), slot.salt, kdf_of(slot))
        try:
            return open_slot(record, slot, kek)
        except WrongSecret:
            continue
    raise WrongSecret("the security answers do not open this card")


# --- recovery code --------------------------------------------------------------------------


def new_recovery_code() -> str:
    """160 random bits as 8 groups of 4 base32 characters, e.g. ``ABCD-EFGH-…``."""
    text = base64.b32encode(secrets.token_bytes(RECOVERY_CODE_BYTES)).decode("ascii")
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


def _recovery_code_bytes(code: str) -> bytearray:
    """Accept any case, spaces and dashes; refuse anything that is not a whole code."""
    compact = re.sub(r"[\s-]", "", code).upper() if isinstance(code, str) else ""
    try:
        raw = base64.b32decode(compact, casefold=False)
    except (binascii.Error, ValueError) as err:
        raise InvalidInput("that is not a recovery code (check for typos)") from err
    if len(raw) != RECOVERY_CODE_BYTES:
        raise InvalidInput("that is not a recovery code (check its length)")
    return bytearray(raw)


def make_recovery_code_slot(
    dek: bytes | bytearray, *, card_id: str, recovery_code: str, generation: int
) -> KeySlot:
    """The recovery-code slot: KEK = HKDF-SHA256(code, salt); the code is 160 random bits."""
    return make_hkdf_slot(
        dek,
        _recovery_code_bytes(recovery_code),
        info=_RECOVERY_CODE_INFO,
        card_id=card_id,
        name=RECOVERY_CODE_SLOT,
        kind=SlotKind.RECOVERY_CODE,
        generation=generation,
    )


def open_recovery_code_slot(record: CardKeyRecord, recovery_code: str) -> bytearray:
    slot = record.slot(RECOVERY_CODE_SLOT)
    return open_hkdf_slot(
        record, slot, _recovery_code_bytes(recovery_code), info=_RECOVERY_CODE_INFO
    )
