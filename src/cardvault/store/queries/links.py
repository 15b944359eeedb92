"""Atomic statements on single-use links (reset, invitation, pairing, QR sign-in).

Every state change on a link is one conditional UPDATE, so that on any number of server
instances a link is consumed by exactly one caller, takes at most its number of wrong tries
however many arrive at once, and a new link of a purpose ends the card's older ones.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from cardvault.store.models import Link


def consume_link(session: Session, link_id: str, now: datetime) -> bool:
    """Mark a live link used; True for exactly one of any number of concurrent callers."""
    won = session.scalar(
        update(Link)
        .where(
            Link.id == link_id,
            Link.consumed_at.is_(None),
            Link.revoked_at.is_(None),
            Link.expires_at > now,
        )
        .values(consumed_at=now)
        .returning(Link.id)
    )
    return won is not None


def revoke_open(
    session: Session,
    *,
    card_id: str,
    now: datetime,
    purpose: str | None = None,
    organisation_id: str | None = None,
) -> None:
    """End the card's open links (of one purpose, in one organisation, when given)."""
    conditions = [Link.card_id == card_id, Link.consumed_at.is_(None), Link.revoked_at.is_(None)]
    if purpose is not None:
        conditions.append(Link.purpose == purpose)
    if organisation_id is not None:
        conditions.append(Link.organisation_id == organisation_id)
    session.execute(update(Link).where(*conditions).values(revoked_at=now))


def reserve_failure(session: Session, link_id: str, now: datetime, max_failures: int) -> int | None:
    """Take one wrong try on a live link before the answer is checked: the count after it,
    or None when the link has no try left or is no longer live."""
    count = session.scalar(
        update(Link)
        .where(
            Link.id == link_id,
            Link.failed_attempts < max_failures,
            Link.consumed_at.is_(None),
            Link.revoked_at.is_(None),
            Link.expires_at > now,
        )
        .values(failed_attempts=Link.failed_attempts + 1)
        .returning(Link.failed_attempts)
    )
    return None if count is None else int(count)


def release_failure(session: Session, link_id: str) -> None:
    """Give a reserved try back (never below zero): the answer was right."""
    session.execute(
        update(Link)
        .where(Link.id == link_id, Link.failed_attempts > 0)
        .values(failed_attempts=Link.failed_attempts - 1)
    )
