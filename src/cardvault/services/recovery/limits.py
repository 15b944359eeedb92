"""How many wrong tries a reset allows, taken atomically before any check (DESIGN §3.3).

A try is reserved on the link *and* on the card with conditional UPDATEs before the KDF
runs (or the second factor is checked), and given back when the answer was right. So a
link allows at most ``LINK_MAX_FAILURES`` wrong tries and a card ``CARD_MAX_FAILURES``
across all its links, however many requests arrive at once on however many servers.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from cardvault.domain.audit_actions import AuditAction
from cardvault.services.notifications import outbox as notifications
from cardvault.services.recovery import links
from cardvault.services.recovery.errors import LinkInvalid, RecoveryBlocked, WrongAnswers
from cardvault.services.signin import factor_lockout
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import Card, Organisation
from cardvault.store.queries import cards as card_queries

#: wrong answers (or codes, or second factors) one link takes before it dies
LINK_MAX_FAILURES = 3
#: wrong tries one card takes across all its links before only an RA can help
CARD_MAX_FAILURES = card_queries.RECOVERY_MAX_FAILURES


def contact(rt: Runtime, session: Session, card: Card) -> str:
    """Who the holder should contact: the organisation's support contact."""
    return notifications.support_contact(rt, session.get(Organisation, card.organisation_id))


def blocked(rt: Runtime, session: Session, card: Card) -> RecoveryBlocked:
    """The RecoveryBlocked refusal for a card with too many wrong tries (naming the contact)."""
    return RecoveryBlocked(
        "Too many wrong answers have been given for this card, so it can no longer be reset here.",
        remedy=f"Contact {contact(rt, session, card)}: they can check who you are and help.",
    )


def reserve(rt: Runtime, link_id: str, card_id: str) -> int:
    """Take one try on the card and one on the link, together, before checking anything."""
    with transaction(rt.db) as session:
        card_count = card_queries.reserve_attempt(session, card_queries.RECOVERY, card_id)
        if card_count is None:
            card = session.get(Card, card_id)
            assert card is not None
            raise blocked(rt, session, card)
    try:
        return links.reserve_failure(rt, link_id, LINK_MAX_FAILURES)
    except LinkInvalid:
        with transaction(rt.db) as session:
            release_card(session, card_id)
        raise


def release_card(session: Session, card_id: str) -> None:
    """Give back the card's reserved recovery try (the answers were right)."""
    card_queries.give_back(session, card_queries.RECOVERY, card_id)


def release(session: Session, link_id: str, card_id: str) -> None:
    """Give back the reserved tries of the link and the card."""
    links.release_failure(session, link_id)
    release_card(session, card_id)


def failed(
    rt: Runtime,
    actor: Actor,
    link_id: str,
    card: Card,
    reserved: int,
    action: AuditAction,
    reason: str,
    held: factor_lockout.Reservation | None = None,
) -> Exception:
    """Audit a wrong try; the error to raise tells the holder what is left. ``held``: a
    wrong second factor, which also counts toward the card's second-factor lock."""
    with transaction(rt.db) as session:
        factor_lockout.audit_failure(
            session,
            rt,
            actor,
            card,
            held,
            action=action,
            reason=reason,
            organisation_id=card.organisation_id,
            door=factor_lockout.RESET,
            details={"link": link_id, "tries_left": LINK_MAX_FAILURES - reserved},
        )
        current = session.get(Card, card.id)
        assert current is not None
        if current.recovery_failures >= CARD_MAX_FAILURES:
            return blocked(rt, session, current)
    if reserved >= LINK_MAX_FAILURES:
        return links.worn_out(links.Purpose.RESET)
    return WrongAnswers(tries_left=LINK_MAX_FAILURES - reserved)
