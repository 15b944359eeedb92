"""Atomic passcode attempts (DESIGN §3.3).

An attempt is *reserved* with one conditional ``UPDATE … RETURNING`` before the KDF runs: the
counter only moves while it is below the limit and the card can be opened, so any number of
concurrent guesses, on any number of server instances, evaluates at most three KDFs. A right
passcode resets the counter; the wrong one that used up the last attempt locks the card.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.lockout import ATTEMPTS_LOCK_REASON, OPENABLE, after_wrong
from cardvault.domain.vocabulary import CardStatus
from cardvault.services.audit import trail as audit
from cardvault.services.cards.lookup import end_card_state
from cardvault.services.recovery import reset_links
from cardvault.services.signin.errors import CardLocked, WrongPasscode
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction, without_flush
from cardvault.store.models import Card
from cardvault.store.queries import cards as card_queries


def reserve_attempt(rt: Runtime, card_id: str) -> int:
    """Take one attempt in its own committed transaction; CardLocked when none is left.

    Attempts still being evaluated count too, so the same card cannot have more than three
    passcodes in flight at once; ``reason`` tells the audit log which case it was.
    """
    with transaction(rt.db) as session:
        without_flush(session)  # passcode_wrong / passcode_right commit it durably
        count = card_queries.reserve_attempt(session, card_queries.PASSCODE, card_id)
        status = (
            None
            if count is not None
            else session.scalar(select(Card.status).where(Card.id == card_id))
        )
    if count is None:
        reason = (
            "card is locked"
            if status == CardStatus.LOCKED
            else f"card is {status}"
            if status not in OPENABLE
            else "no attempt left (others in progress)"
        )
        raise CardLocked(
            "This card is locked.",
            reason=reason,
            remedy="Use the link in the email we sent, or ask your RA to unlock it.",
        )
    return count


def passcode_right(session: Session, card: Card) -> None:
    """Reset the counter in the caller's transaction (the slot opened)."""
    card.failed_attempts = 0


def passcode_wrong(
    rt: Runtime,
    actor: Actor,
    card_id: str,
    reserved: int,
    *,
    action: AuditAction,
    route: str | None = None,
) -> WrongPasscode:
    """Record a wrong passcode (and lock on the last attempt); returns the error to raise.
    ``route``: the sign-in route, when it was a sign-in (the audit event and metrics say)."""
    outcome = after_wrong(reserved)
    with transaction(rt.db) as session:
        card = card_queries.for_update(session, card_id)
        audit.record_for_card(
            session,
            rt,
            actor,
            card,
            action=action,
            outcome="failure",
            reason="incorrect passcode",
            details={"attempts_left": outcome.attempts_left}
            | ({"method": route} if route else {})
            | audit.whence(actor),
        )
        if outcome.lock and card.status != CardStatus.LOCKED:
            lock_in_session(session, rt, actor, card, reason=ATTEMPTS_LOCK_REASON)
            if card.locked_from == CardStatus.ACTIVE:
                # the holder learns at once, with a link to unlock it themselves (DESIGN §3.3);
                # a card not yet enrolled has no security questions: its RA unlocks it
                reset_links.send_reset_link(session, rt, actor, card, trigger="locked")
    return WrongPasscode(attempts_left=outcome.attempts_left)


def lock_in_session(
    session: Session,
    rt: Runtime,
    actor: Actor,
    card: Card,
    *,
    reason: str,
    status_reason: str | None = None,
) -> None:
    """Lock ``card`` (row locked by the caller); ``status_reason`` is what people read, when
    ``reason`` is a code."""
    now = rt.clock()
    card.locked_from = card.status
    card.status, card.lock_reason = CardStatus.LOCKED, reason
    card.status_reason = status_reason or reason
    card.status_changed_at = now
    end_card_state(session, card.id, now)
    audit.record_for_card(session, rt, actor, card, action=AuditAction.CARD_LOCKED, reason=reason)
