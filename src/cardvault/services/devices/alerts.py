"""Messages about devices, written to the notifications outbox in the caller's transaction.

The dispatcher (built with the self-service portal) sends them after the commit. The rows
follow its conventions: the template's own context keys only, datetimes stored as
``{"$datetime": ISO 8601}``, and the RA link pointing at the card in the vRA Manager.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardvault.domain.org_policy import OrganisationPolicy
from cardvault.services.runtime import Runtime
from cardvault.store.models import (
    Card,
    Notification,
    Organisation,
    Person,
    RaRole,
    RaRoleGrant,
)

ALERTED_ROLES = (RaRole.RA_MANAGER.value, RaRole.RA_AGENT.value)


def _when(moment: datetime) -> dict[str, str]:
    return {"$datetime": moment.isoformat()}


def _add(
    session: Session,
    rt: Runtime,
    card: Card,
    org_id: str,
    to: str,
    template: str,
    ctx: dict[str, Any],
) -> None:
    now = rt.clock()
    session.add(
        Notification(
            channel="email",
            recipient=to,
            template=template,
            context=ctx,
            organisation_id=org_id,
            card_id=card.id,
            created_at=now,
            next_attempt_at=now,
        )
    )


def to_holder(
    session: Session, rt: Runtime, card: Card, org: Organisation, template: str, device_name: str
) -> None:
    """``device_added`` / ``device_removed`` to the holder's enrolled address."""
    person = session.get(Person, card.person_id)
    if person is None or not person.email:
        return
    ctx = {
        "holder_name": person.common_name,
        "support_contact": OrganisationPolicy.from_dict(org.policy).ra_contact,
        "at": _when(rt.clock()),
        "device_name": device_name,
    }
    _add(session, rt, card, org.id, person.email, template, ctx)


def not_me(session: Session, rt: Runtime, card: Card, org: Organisation, device_name: str) -> int:
    """Alert every RA manager and agent of the organisation; returns how many were queued."""
    holder = session.get(Person, card.person_id)
    assert holder is not None
    recipients = session.scalars(
        select(Person.email)
        .join(RaRoleGrant, RaRoleGrant.person_id == Person.id)
        .where(
            RaRoleGrant.organisation_id == org.id,
            RaRoleGrant.role.in_(ALERTED_ROLES),
            Person.email.is_not(None),
        )
        .distinct()
    ).all()
    ctx = {
        "holder_name": holder.common_name,
        "organisation_name": org.name,
        "device_name": device_name,
        "at": _when(rt.clock()),
        "ra_link": f"{rt.settings.base_url.rstrip('/')}/ra/cards/{card.serial}",
    }
    for address in recipients:
        if address:
            _add(session, rt, card, org.id, address, "not_me_alert", dict(ctx))
    return len(recipients)
