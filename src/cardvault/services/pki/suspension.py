"""Suspending a card (certificateHold) and lifting the suspension (DESIGN §3.9).

For a holder on leave or a card under investigation: unlike revocation the keys stay, and
an RA can lift it. While suspended the card cannot sign in (its status is not one a
passcode opens), its sessions and links end, and its certificates are on hold: the CRL
lists them with reason certificateHold and OCSP says revoked (certificateHold). Lifting
returns the card to the status it had and takes the certificates off the next CRL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import ScalarResult, select
from sqlalchemy.orm import Session

from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.vocabulary import CardStatus
from cardvault.errors import Conflict
from cardvault.services.audit import trail as audit
from cardvault.services.cards.issuance import clean_reason
from cardvault.services.cards.lookup import end_card_state, get_card
from cardvault.services.pki import crl as crls
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import Card, Certificate

#: statuses a card can be suspended from (a blank card has nothing to suspend)
SUSPENDABLE = (
    CardStatus.ISSUED,
    CardStatus.ENROLLED,
    CardStatus.ACTIVE,
    CardStatus.LOCKED,
)


def suspend(
    rt: Runtime, actor: Actor, serial: str, *, reason: str, organisation_id: str | None = None
) -> Card:
    """Put the card's valid certificates on hold and refuse its sign-ins until resumed."""
    reason = clean_reason(reason)
    with _changing(rt, serial, organisation_id) as (session, card):
        if card.status not in SUSPENDABLE:
            raise Conflict(f"Card {card.serial} is {card.status}; it cannot be suspended.")
        now = rt.clock()
        card.suspended_from, card.status = card.status, CardStatus.SUSPENDED
        card.status_reason, card.status_changed_at = reason, now
        for cert in _certificates(session, card, "valid"):
            cert.status, cert.revoked_at, cert.revocation_reason = "on_hold", now, "certificateHold"
        end_card_state(session, card.id, now)
        _audit(
            session,
            rt,
            actor,
            card,
            AuditAction.CARD_SUSPENDED,
            reason,
            {"from": card.suspended_from},
        )
    return card


def resume(
    rt: Runtime, actor: Actor, serial: str, *, reason: str, organisation_id: str | None = None
) -> Card:
    """Lift a suspension: the card's status and certificates are as they were before it."""
    reason = clean_reason(reason)
    with _changing(rt, serial, organisation_id) as (session, card):
        if card.status != CardStatus.SUSPENDED:
            raise Conflict(f"Card {card.serial} is {card.status}, not suspended.")
        card.status = card.suspended_from or CardStatus.ACTIVE
        card.suspended_from = None
        card.status_reason, card.status_changed_at = reason, rt.clock()
        for cert in _certificates(session, card, "on_hold"):
            cert.status, cert.revoked_at, cert.revocation_reason = "valid", None, None
        _audit(session, rt, actor, card, AuditAction.CARD_RESUMED, reason, {"to": card.status})
    return card


@contextmanager
def _changing(
    rt: Runtime, serial: str, organisation_id: str | None
) -> Iterator[tuple[Session, Card]]:
    """The card locked for a change of its certificates' status; the CRL follows the commit."""
    with transaction(rt.db) as session:
        yield session, get_card(session, serial, organisation_id=organisation_id, for_update=True)
    crls.publish_after_change(rt)


def _certificates(session: Session, card: Card, status: str) -> ScalarResult[Certificate]:
    return session.scalars(
        select(Certificate).where(Certificate.card_id == card.id, Certificate.status == status)
    )


def _audit(
    session: Session,
    rt: Runtime,
    actor: Actor,
    card: Card,
    action: AuditAction,
    reason: str,
    extra: dict[str, str | None],
) -> None:
    details = {"serial": card.serial, **extra}
    audit.record_for_card(session, rt, actor, card, action=action, reason=reason, details=details)
