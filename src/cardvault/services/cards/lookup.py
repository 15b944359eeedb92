"""Finding a card and ending what hangs off it: shared by every package that touches a card.

It lives apart from issuance because nine packages need it and none of them issue cards.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cardvault.domain import identifiers
from cardvault.errors import NotFound
from cardvault.store.models import Card, CardSession, Membership
from cardvault.store.queries import links as link_queries


def get_card(
    session: Session, serial: str, *, organisation_id: str | None = None, for_update: bool = False
) -> Card:
    """A card by serial, optionally only within one organisation's scope (404 outside).

    A card works in every organisation its holder belongs to, so scope is membership.
    """
    stmt = select(Card).where(Card.serial == identifiers.card_serial(serial))
    if organisation_id is not None:
        stmt = stmt.join(Membership, Membership.person_id == Card.person_id).where(
            Membership.organisation_id == organisation_id
        )
    if for_update:
        stmt = stmt.with_for_update()
    card = session.scalar(stmt)
    if card is None:
        raise NotFound(f"There is no card {serial.strip().upper()}.")
    return card


def end_card_state(session: Session, card_id: str, now: datetime) -> None:
    """Sessions and open links die with a lock, a revocation or a recovery."""
    session.execute(delete(CardSession).where(CardSession.card_id == card_id))
    link_queries.revoke_open(session, card_id=card_id, now=now)
