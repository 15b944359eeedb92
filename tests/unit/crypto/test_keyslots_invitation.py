"""The invitation slot: opened only by the link token together with the SMS code."""

from __future__ import annotations

import secrets

import pytest

from cardvault.crypto._record import CardKeyRecord, SlotKind
from cardvault.crypto.keyslots import (
    WrongSecret,
    make_invitation_slot,
    new_dek,
    open_invitation_slot,
)
from cardvault.errors import InvalidInput

CARD = "card-1"


def _record(token: bytes, code: str) -> tuple[CardKeyRecord, bytearray]:
    dek = new_dek()
    slot = make_invitation_slot(dek, card_id=CARD, token=token, code=code, generation=2)
    assert slot.kind is SlotKind.INVITATION
    assert slot.kdf is None
    return CardKeyRecord(card_id=CARD, keys=(), slots=(slot,)), dek


def test_token_and_code_open_the_slot() -> None:
    token = secrets.token_bytes(32)
    record, dek = _record(token, "123456")
    assert open_invitation_slot(record, token, "123 456") == dek
    round_trip = CardKeyRecord.from_bytes(record.to_bytes())
    assert open_invitation_slot(round_trip, token, "123456") == dek


def test_a_wrong_code_or_token_does_not_open_it() -> None:
    token = secrets.token_bytes(32)
    record, _dek = _record(token, "123456")
    with pytest.raises(WrongSecret):
        open_invitation_slot(record, token, "123457")
    with pytest.raises(WrongSecret):
        open_invitation_slot(record, secrets.token_bytes(32), "123456")


@pytest.mark.parametrize(
    ("token", "code"), [(b"short", "123456"), (b"x" * 32, "12a456"), (b"x" * 32, "123")]
)
def test_malformed_inputs_are_refused(token: bytes, code: str) -> None:
    with pytest.raises(InvalidInput):
        make_invitation_slot(new_dek(), card_id=CARD, token=token, code=code, generation=1)
