"""Certificates that expire soon (DESIGN §3.9): the RA's expiry report, and the email that
tells each holder ``renew_days`` (organisation policy) before expiry, once per certificate.

A card counts by its issuing organisation, whose policy set the validity. The reminder goes
out from the maintenance loop of ``cardvault serve``; ``expiry_notified_at`` on the
certificate row makes it once only, also with several instances (the UPDATE that claims a
row is the one that sends).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from cardvault.domain.vocabulary import CardStatus
from cardvault.notify.templates import EmailTemplate
from cardvault.services.directory.registry import get_org
from cardvault.services.notifications import outbox
from cardvault.services.system.runtime import Runtime
from cardvault.store.db import transaction
from cardvault.store.models import Card, Certificate, Organisation, Person
from cardvault.store.queries.organisations import policy_of

#: cards whose certificates still matter (a revoked card's are revoked anyway)
_LIVE = (
    CardStatus.ISSUED,
    CardStatus.ENROLLED,
    CardStatus.ACTIVE,
    CardStatus.LOCKED,
    CardStatus.SUSPENDED,
)


@dataclass(frozen=True, kw_only=True)
class Expiring:
    """One card in the expiry report: its first certificate to expire."""

    serial: str
    user_id: str
    name: str
    card_status: str
    expires_at: datetime
    days_left: int
    notified_at: datetime | None

    def as_dict(self) -> dict[str, object]:
        """The JSON of ``cardvault card expiring --json``."""
        return {
            "serial": self.serial,
            "user_id": self.user_id,
            "name": self.name,
            "card_status": self.card_status,
            "expires_at": self.expires_at.isoformat(),
            "days_left": self.days_left,
            "holder_told_at": self.notified_at.isoformat() if self.notified_at else None,
        }


def report(
    rt: Runtime, *, org_code: str | None = None, organisation_id: str | None = None
) -> list[Expiring]:
    """Cards of one organisation whose certificates expire within its ``renew_days``."""
    now = rt.clock()
    with rt.db() as session:
        org = (
            session.get(Organisation, organisation_id)
            if organisation_id is not None
            else get_org(session, org_code or "")
        )
        assert org is not None
        horizon = now + timedelta(days=policy_of(org).renew_days)
        rows = session.execute(
            select(Certificate, Card, Person)
            .join(Card, Card.id == Certificate.card_id)
            .join(Person, Person.id == Card.person_id)
            .where(
                Card.organisation_id == org.id,
                Card.status.in_(_LIVE),
                Certificate.status.in_(("valid", "on_hold")),
                Certificate.not_after <= horizon,
            )
            .order_by(Certificate.not_after)
        ).all()
    seen: dict[str, Expiring] = {}
    for cert, card, person in rows:
        if card.serial in seen:
            continue
        seen[card.serial] = Expiring(
            serial=card.serial,
            user_id=person.user_id,
            name=person.common_name,
            card_status=card.status,
            expires_at=cert.not_after,
            days_left=max(0, (cert.not_after - now).days),
            notified_at=cert.expiry_notified_at,
        )
    return list(seen.values())


def remind(rt: Runtime) -> int:
    """Email each holder whose certificates enter their organisation's renewal window (a
    maintenance job); returns how many were told."""
    now = rt.clock()
    told = 0
    with rt.db() as session:
        orgs = [(o.id, policy_of(o).renew_days) for o in session.scalars(select(Organisation))]
    for org_id, renew_days in orgs:
        horizon = now + timedelta(days=renew_days)
        with transaction(rt.db) as session:
            due = session.execute(
                select(Certificate.id, Card)
                .join(Card, Card.id == Certificate.card_id)
                .where(
                    Card.organisation_id == org_id,
                    Card.status.in_(_LIVE),
                    Certificate.status == "valid",
                    Certificate.expiry_notified_at.is_(None),
                    Certificate.not_after <= horizon,
                    Certificate.not_after > now,
                )
            ).all()
            cards: dict[str, tuple[Card, list[str]]] = {}
            for cert_id, card in due:
                cards.setdefault(card.id, (card, []))[1].append(cert_id)
            for card, cert_ids in cards.values():
                claimed = session.execute(
                    update(Certificate)
                    .where(Certificate.id.in_(cert_ids), Certificate.expiry_notified_at.is_(None))
                    .values(expiry_notified_at=now)
                    .returning(Certificate.id)
                ).all()
                if not claimed:
                    continue
                first = min(
                    session.scalars(
                        select(Certificate.not_after).where(Certificate.id.in_(cert_ids))
                    )
                )
                outbox.to_holder(
                    session,
                    rt,
                    card,
                    EmailTemplate.CERTIFICATE_EXPIRING,
                    context={"card_serial": card.serial, "expires_at": first},
                )
                told += 1
    return told
