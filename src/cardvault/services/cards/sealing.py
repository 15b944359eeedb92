"""The outer seal (DESIGN §3.1): a card's key record sealed under the master key.

The record (sealed private keys + key slots) is one blob, so a change of passcode, a new
recovery slot or a revocation rewrites it in the same transaction as the rest of the card.
The AAD binds the blob to the card and its record version: a record copied to another card,
or an older version restored over a newer one by someone without the master key, fails.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import delete
from sqlalchemy.orm import Session

from cardvault.crypto.aead import aad, wipe
from cardvault.crypto.keyslots import CardKeyRecord, new_session_key, wrap_for_session
from cardvault.domain.vocabulary import CardStatus
from cardvault.keystore.provider import MasterKey
from cardvault.services.cards.errors import CardRevoked
from cardvault.store.models import Card, KeySlotInfo, PivCard, PivLink


class SealedCard(Protocol):
    """What opening a key record reads of a card: the row or the relay's plain one."""

    @property
    def id(self) -> str:
        """The card's id (in the record's AAD)."""

    @property
    def serial(self) -> str:
        """For the error message."""

    @property
    def status(self) -> CardStatus:
        """A revoked card's record is not opened."""

    @property
    def key_record(self) -> bytes | None:
        """The sealed record; None once revoked."""

    @property
    def record_version(self) -> int:
        """The record's version (in its AAD)."""


def _record_aad(card: SealedCard, version: int) -> bytes:
    return aad("card-record", card.id, version)


def open_record(master: MasterKey, card: SealedCard) -> CardKeyRecord:
    """Open the card's key record with the master key; raises CardRevoked if it has none,
    SealBroken if it was altered or moved."""
    if card.key_record is None or card.status == CardStatus.REVOKED:
        raise CardRevoked(f"Card {card.serial} is revoked: its keys no longer exist.")
    plain = master.open(card.key_record, aad=_record_aad(card, card.record_version))
    try:
        return CardKeyRecord.from_bytes(bytes(plain))
    finally:
        plain[:] = bytes(len(plain))


def seal_record(session: Session, master: MasterKey, card: Card, record: CardKeyRecord) -> None:
    """Write a new version of the record and the slot list shown to RAs."""
    version = (card.record_version or 0) + 1 if card.key_record is not None else 1
    card.key_record = master.seal(record.to_bytes(), aad=_record_aad(card, version))
    card.record_version = version
    card.mk_version = master.mk_version
    session.execute(delete(KeySlotInfo).where(KeySlotInfo.card_id == card.id))
    session.flush()
    for slot in record.slots:
        session.add(
            KeySlotInfo(
                card_id=card.id,
                name=slot.name,
                kind=slot.kind.value,
                kdf=slot.kdf.as_dict() if slot.kdf else None,
                generation=slot.generation,
            )
        )


def shred_record(session: Session, card: Card) -> None:
    """Crypto-shredding: without DEK and slots the sealed keys are gone for good (and with
    the PC/SC applet its card PIN verifier and management key)."""
    card.key_record = None
    session.execute(delete(KeySlotInfo).where(KeySlotInfo.card_id == card.id))
    session.execute(delete(PivLink).where(PivLink.card_id == card.id))
    session.execute(delete(PivCard).where(PivCard.card_id == card.id))


def hand_over(dek: bytearray, transaction_id: str) -> tuple[bytes, bytes]:
    """An opened DEK passed on to the next step of a transaction (DESIGN §3.2): a fresh key K
    for the client alone, and the DEK wrapped under K for the service to keep. The DEK is
    wiped here, whatever happens: once wrapped, nothing else needs it in clear."""
    key = new_session_key()
    try:
        return bytes(key), wrap_for_session(dek, key, session_id=transaction_id)
    finally:
        wipe(dek)
