"""Sending reset links (DESIGN §3.3): on lock, on the holder's request, on an RA's unlock.

:func:`send_reset_link` runs inside the caller's transaction (the lock, the RA's unlock), so
the link and its email exist exactly when the change does. :func:`request_reset` is the
"forgotten your passcode?" form: it answers the same, in about the same time, whether or
not the address is enrolled, and sends at most a few emails per card an hour so that
nobody can flood a holder's mailbox.
"""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cardvault.domain import identifiers
from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.lockout import SECOND_FACTOR_LOCK_REASON, SELF_UNLOCKABLE_REASONS
from cardvault.domain.vocabulary import CardStatus
from cardvault.errors import InvalidInput
from cardvault.notify.templates import EmailTemplate, TemplateValue
from cardvault.services.audit import trail as audit
from cardvault.services.notifications import outbox as notifications
from cardvault.services.recovery import links
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import Card, Link, Organisation, Person, SecurityQuestion
from cardvault.store.queries.organisations import policy_of

#: reset emails one card may receive in an hour through the forgotten-passcode form
REQUESTS_PER_HOUR = 3
TRIGGERS = ("locked", "requested", "ra_unlock")


def portal_link(rt: Runtime, token: str) -> str:
    """The portal address of a reset link."""
    return f"{rt.settings.base_url.rstrip('/')}/portal/reset/{token}"


def send_reset_link(
    session: Session, rt: Runtime, actor: Actor, card: Card, *, trigger: str
) -> str | None:
    """Create a reset link for ``card`` (revoking older ones) and email it to the holder.

    ``trigger`` is "locked" (the lock email, with its warning), "requested" (the holder asked)
    or "ra_unlock" (an RA unlocked the card: the link may then lift an RA's lock too).
    Returns the link id, or None when the holder has no enrolled email address.
    """
    assert trigger in TRIGGERS
    person = session.get(Person, card.person_id)
    org = session.get(Organisation, card.organisation_id)
    assert person is not None and org is not None
    if not person.email:
        audit.record_for_card(
            session,
            rt,
            actor,
            card,
            action=AuditAction.PORTAL_RESET_LINK,
            outcome="failure",
            reason="no enrolled email address",
            details={"trigger": trigger, "link": None},
        )
        return None
    minutes = policy_of(org).reset_link_minutes
    link = links.create(
        session,
        rt,
        purpose=links.Purpose.RESET,
        card=card,
        minutes=minutes,
        details={"trigger": trigger, "unlock": trigger == "ra_unlock"},
    )
    template = EmailTemplate.CARD_LOCKED if trigger == "locked" else EmailTemplate.RESET_REQUESTED
    context: dict[str, TemplateValue] = {"valid_minutes": minutes}
    if template is EmailTemplate.CARD_LOCKED:
        context["at"] = card.status_changed_at
        context["cause"] = (
            "second_factor" if card.lock_reason == SECOND_FACTOR_LOCK_REASON else "passcode"
        )
    notifications.to_holder(
        session,
        rt,
        card,
        template,
        context=context,
        secrets={"link": portal_link(rt, link.token)},
        expires_at=link.expires_at,
    )
    audit.record_for_card(
        session,
        rt,
        actor,
        card,
        action=AuditAction.PORTAL_RESET_LINK,
        details={"trigger": trigger, "link": link.link_id},
    )
    return link.link_id


def may_self_unlock(card: Card, *, link_unlocks: bool = False) -> bool:
    """Active cards, cards locked by wrong passcodes or wrong second factors, and any lock
    an RA's link lifts."""
    if card.status == CardStatus.ACTIVE:
        return True
    return card.status == CardStatus.LOCKED and (
        link_unlocks or card.lock_reason in SELF_UNLOCKABLE_REASONS
    )


def request_reset(rt: Runtime, actor: Actor, identifier: str) -> None:
    """The forgotten-passcode form: maybe email a link; the caller learns nothing either way."""
    started = time.monotonic()
    try:
        _request(rt, actor, _clean(identifier))
    finally:
        remaining = rt.settings.reset_request_min_seconds - (time.monotonic() - started)
        if remaining > 0:
            time.sleep(remaining)


def _clean(identifier: str) -> str:
    cleaned = (identifier or "").strip()
    if not cleaned:
        raise InvalidInput("Enter your email address or user ID.", field="identifier")
    if len(cleaned) > 254:
        raise InvalidInput("That is too long for an email address or user ID.", field="identifier")
    return cleaned


def _request(rt: Runtime, actor: Actor, identifier: str) -> None:
    with transaction(rt.db) as session:
        card = _card_for(session, identifier)
        reason = _why_not(session, rt, card) if card is not None else "unknown identifier"
        if card is None or reason is not None:
            audit.record(
                session,
                rt,
                actor,
                action=AuditAction.PORTAL_RESET_REQUESTED,
                outcome="failure",
                reason=reason,
                organisation_id=card.organisation_id if card else None,
                person_id=card.person_id if card else None,
                card_id=card.id if card else None,
            )
            return
        send_reset_link(session, rt, actor, card, trigger="requested")


def _card_for(session: Session, identifier: str) -> Card | None:
    """The holder's live card, found by email address or user ID; None when nothing fits."""
    person = None
    try:
        if "@" in identifier:
            person = session.scalar(
                select(Person).where(Person.email == identifiers.email(identifier))
            )
        else:
            person = session.scalar(
                select(Person).where(Person.user_id == identifiers.user_id(identifier))
            )
    except InvalidInput:
        return None
    if person is None:
        return None
    return session.scalar(
        select(Card).where(Card.person_id == person.id, Card.status != CardStatus.REVOKED)
    )


def _why_not(session: Session, rt: Runtime, card: Card) -> str | None:
    """Why no link is sent for this card now (for the audit log only), or None."""
    if not may_self_unlock(card):
        return f"card is {card.status}" + (f" ({card.lock_reason})" if card.lock_reason else "")
    question = select(SecurityQuestion.id).where(SecurityQuestion.card_id == card.id)
    if session.scalar(question.limit(1)) is None:
        return "card has no security questions"
    since = rt.clock() - timedelta(hours=1)
    recent = session.scalar(
        select(func.count())
        .select_from(Link)
        .where(
            Link.card_id == card.id,
            Link.purpose == links.Purpose.RESET.value,
            Link.created_at > since,
        )
    )
    if (recent or 0) >= REQUESTS_PER_HOUR:
        return f"more than {REQUESTS_PER_HOUR} reset links in an hour"
    return None
