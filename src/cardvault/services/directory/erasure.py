"""Erasing people who left (GDPR, issue 19): after the retention period of the organisations
they left, a person who belongs to no organisation keeps only what the audit trail needs.

What stays is the person's row id, which audit events name (``holder:<id>``), and nothing
that identifies them: names, email address, mobile number and user id are overwritten;
sessions, links, methods, security questions and their phones' secrets are deleted. Audit
events are never changed (each chain is hashed and signed); their references are pseudonymous
once the row says nothing. Revoked cards stay as rows (their key records were shredded at
revocation) and so do their certificates, which CRLs and OCSP still answer for.

Run by the service's housekeeping and by ``cardvault maintenance erase-leavers``.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cardvault.domain.audit_actions import AuditAction
from cardvault.services.audit import trail as audit
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import (
    AdAccount,
    Association,
    Card,
    CardSession,
    Device,
    Link,
    Membership,
    Organisation,
    Person,
    SecurityQuestion,
)
from cardvault.store.queries.organisations import policy_of

SYSTEM = Actor(ref="system", display="cardvault")


def erase_expired(rt: Runtime) -> int:
    """Erase every person who left their last organisation longer ago than that
    organisation's retention period (the longest of the organisations whose audit trail names
    them); the number erased."""
    now = rt.clock()
    with rt.db() as session:
        candidates = list(
            session.execute(
                select(Person.id, Person.left_at).where(
                    Person.left_at.is_not(None),
                    ~Person.id.in_(select(Membership.person_id)),
                )
            )
        )
    erased = 0
    for person_id, left_at in candidates:
        assert left_at is not None
        if now - left_at >= timedelta(days=_retention_days(rt, person_id)):
            erased += _erase(rt, person_id)
    return erased


def _retention_days(rt: Runtime, person_id: str) -> int:
    """The longest retention of the organisations the person's cards were issued in (the
    service's default when they never had a card)."""
    with rt.db() as session:
        orgs = session.scalars(
            select(Organisation)
            .join(Card, Card.organisation_id == Organisation.id)
            .where(Card.person_id == person_id)
        )
        days = [policy_of(org).leaver_retention_days for org in orgs]
    return max(days, default=policy_of(None).leaver_retention_days)


def _erase(rt: Runtime, person_id: str) -> int:
    with transaction(rt.db) as session:
        person = session.get(Person, person_id)
        if person is None or person.left_at is None or _is_member(session, person_id):
            return 0  # joined again meanwhile
        card_ids = list(session.scalars(select(Card.id).where(Card.person_id == person_id)))
        if any(
            c.status.is_live for c in session.scalars(select(Card).where(Card.id.in_(card_ids)))
        ):
            return 0  # a live card: an RA must revoke it first
        _delete_personal_rows(session, person_id, card_ids)
        person.user_id = "E" + secrets.token_hex(6)[:11].upper()
        person.forename, person.surname, person.common_name = "erased", "erased", "Erased person"
        person.email, person.phone = None, None
        audit.record(
            session, rt, SYSTEM, action=AuditAction.PERSON_ERASED, person_id=person_id,
            details={"cards": len(card_ids)},
        )  # fmt: skip
        return 1


def _delete_personal_rows(session: Session, person_id: str, card_ids: list[str]) -> None:
    assoc_ids = select(Association.id).where(Association.card_id.in_(card_ids))
    session.execute(delete(AdAccount).where(AdAccount.association_id.in_(assoc_ids)))
    session.execute(delete(Association).where(Association.card_id.in_(card_ids)))
    session.execute(delete(SecurityQuestion).where(SecurityQuestion.card_id.in_(card_ids)))
    session.execute(delete(CardSession).where(CardSession.person_id == person_id))
    session.execute(delete(Link).where(Link.person_id == person_id))
    session.execute(delete(Link).where(Link.card_id.in_(card_ids)))
    for phone in session.scalars(select(Device).where(Device.card_id.in_(card_ids))):
        phone.name, phone.status, phone.sealed_totp_secret = "erased", "revoked", None


def _is_member(session: Session, person_id: str) -> bool:
    return (
        session.scalar(select(Membership.id).where(Membership.person_id == person_id)) is not None
    )
