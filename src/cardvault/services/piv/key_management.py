"""The key-management key (PIV slot 9D) of cards whose organisation gives them one.

An organisation's policy ``key_management`` gives its cards an encryption key (RSA key
transport, or ECDH for EC cards) and an encryption certificate, so that S/MIME mail can be
encrypted to the holder and decrypted with the card. A card issued while the setting is on
gets the key with its others (services/cards/issuance.py). A card issued before gets it the
next time its holder's connector inserts it: a new key can be sealed only under the card's
DEK, and only a card session opens that (DESIGN §3.1) -- the RA cannot add it.

The key is held like the others (sealed in the card key record under the role
``key_management``); each use through the reader is audited like theirs (services/piv/trail.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.x509 import Certificate as X509Certificate
from sqlalchemy import select
from sqlalchemy.orm import Session

from cardvault.crypto import keys as ckeys
from cardvault.crypto.aead import wipe
from cardvault.crypto.keyslots import CardKeyRecord, WrongSecret, seal_private_key, unwrap_session
from cardvault.crypto.x509 import CertUsage
from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.vocabulary import AppletOrigin, CardStatus
from cardvault.services.audit import trail as audit
from cardvault.services.cards.issuance import certificate_row
from cardvault.services.cards.sealing import open_record, seal_record
from cardvault.services.pki import ca
from cardvault.services.pki.errors import CaMissing
from cardvault.services.pki.renewal import issue_for_card
from cardvault.services.signin import sessions as card_sessions
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import Card, Certificate, Organisation, PivCard
from cardvault.store.queries.organisations import policy_of

__all__ = ["KeyAdded", "add_when_wanted"]

_ROLE = CertUsage.KEY_MANAGEMENT
_LIVE = (CardStatus.ISSUED, CardStatus.ENROLLED, CardStatus.ACTIVE)


@dataclass(frozen=True, kw_only=True)
class KeyAdded:
    """A key-management key given to a card: its certificate's serial (hex)."""

    serial: str
    certificate_serial: str


def add_when_wanted(
    rt: Runtime, actor: Actor, *, token: str, session_key: bytes
) -> KeyAdded | None:
    """Give the session's card its key-management key if its organisation wants one and it
    has none; None when nothing was to be done (or another link did it at the same moment).
    A session that is not a holder's, or a session key that does not fit, does nothing here:
    the caller refuses them with its own words."""
    with transaction(rt.db) as session:
        row, card = card_sessions.use(session, rt, token, client_address=actor.client_address)
        if row.purpose != "holder" or not _wanted(session, card):
            return None
        card_id, seen_version, owner = card.id, card.record_version, card_sessions.owner(actor, row)
        session_id, session_wrap = row.id, row.session_wrap
    try:
        issuer = ca.load(rt)
        dek = unwrap_session(session_wrap, session_key, session_id=session_id)
    except (CaMissing, WrongSecret):  # an external CA certifies its cards; the caller refuses
        return None
    with rt.db() as session:
        current = session.get(Card, card_id)
        assert current is not None
        try:
            record, public = _new_key(rt, current, dek)
        finally:
            wipe(dek)
        cert = issue_for_card(rt, session, current, issuer, {_ROLE: public})[_ROLE]
    return _store(rt, owner, card_id, seen_version, record, cert)


def _wanted(session: Session, card: Card) -> bool:
    """The organisation wants the key, the card is live, has an applet the service built
    (a card management system writes its own 9D) and no key-management key yet."""
    piv = session.get(PivCard, card.id)
    if card.status not in _LIVE or piv is None or piv.origin != AppletOrigin.SERVICE:
        return False
    if not policy_of(session.get(Organisation, card.organisation_id)).key_management:
        return False
    return not _has_certificate(session, card.id)


def _has_certificate(session: Session, card_id: str) -> bool:
    found = session.scalar(
        select(Certificate.id).where(
            Certificate.card_id == card_id,
            Certificate.usage == _ROLE.value,
            Certificate.status == "valid",
        )
    )
    return found is not None


def _new_key(rt: Runtime, card: Card, dek: bytearray) -> tuple[CardKeyRecord, ckeys.PublicKey]:
    """A new key pair of the card's algorithm, sealed under its DEK into a new record."""
    record = open_record(rt.master_key, card)
    version = max((k.version for k in record.keys if k.role == _ROLE.value), default=0) + 1
    algorithm = ckeys.KeyAlgorithm(card.key_algorithm)
    key = ckeys.generate_private_key(algorithm)
    pkcs8 = ckeys.private_key_to_pkcs8(key)
    try:
        sealed = seal_private_key(
            dek,
            card_id=card.id,
            role=_ROLE.value,
            version=version,
            algorithm=algorithm.value,
            pkcs8=pkcs8,
        )
    finally:
        wipe(pkcs8)
    others = tuple(k for k in record.keys if k.role != _ROLE.value)
    new_record = CardKeyRecord(card_id=card.id, keys=(*others, sealed), slots=record.slots)
    return new_record, key.public_key()


def _store(
    rt: Runtime,
    actor: Actor,
    card_id: str,
    seen_version: int,
    record: CardKeyRecord,
    cert: X509Certificate,
) -> KeyAdded | None:
    """Write the record and the certificate, unless the card moved meanwhile (another link
    added the key first, the passcode changed): then nothing, and the next insertion looks
    again."""
    with transaction(rt.db) as session:
        card = session.get(Card, card_id, with_for_update=True)
        assert card is not None
        if card.record_version != seen_version or _has_certificate(session, card_id):
            return None
        seal_record(session, rt.master_key, card, record)
        row = certificate_row(card.id, _ROLE, cert)
        session.add(row)
        audit.record_for_card(
            session,
            rt,
            actor,
            card,
            action=AuditAction.CARD_KEY_MANAGEMENT_ADDED,
            details={"serial": card.serial, "certificate": row.serial_hex, "slot": "9d"},
        )
        return KeyAdded(serial=card.serial, certificate_serial=row.serial_hex)
