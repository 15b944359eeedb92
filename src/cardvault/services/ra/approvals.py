"""Sponsors approve that a person of their organisation may be issued a card (issue 19).

The sponsor's one power. When the organisation's policy says ``cards_need_sponsor_approval``,
an RA agent or manager can issue a card only to a person a sponsor (or an RA manager, who
may do everything) approved; the approval is recorded once per person and organisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.vocabulary import RaPermission, RaRole
from cardvault.errors import Conflict, PermissionDenied
from cardvault.services.ra.actions import RaContext
from cardvault.services.ra.errors import NotApproved
from cardvault.services.ra.persons import current_card, person_in_scope
from cardvault.services.system.runtime import Runtime
from cardvault.store.db import transaction
from cardvault.store.models import CardApproval, Membership, Organisation, Person
from cardvault.store.queries.organisations import policy_of


@dataclass(frozen=True, kw_only=True)
class Awaiting:
    """A person without a live card, and when a sponsor approved their card (if one has)."""

    user_id: str
    name: str
    approved_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class ApprovalsPage:
    """The approvals page: whether the organisation asks for them, and who waits."""

    organisation_code: str
    required: bool
    people: tuple[Awaiting, ...]


def _require(ctx: RaContext) -> None:
    if not RaRole(ctx.role).allows(RaPermission.APPROVE_CARDS):
        raise PermissionDenied("Only a sponsor or an RA manager may approve cards.")


def page(rt: Runtime, ctx: RaContext) -> ApprovalsPage:
    """The organisation's people without a live card, approved or not (newest first)."""
    _require(ctx)
    with rt.db() as session:
        people = session.scalars(
            select(Person)
            .join(Membership, Membership.person_id == Person.id)
            .where(Membership.organisation_id == ctx.organisation_id)
            .order_by(Person.surname, Person.forename)
            .limit(200)
        )
        rows = []
        for person in people:
            card = current_card(session, person.id)
            if card is not None and card.status.is_live:
                continue
            approval = _approval(session, ctx.organisation_id, person.id)
            rows.append(
                Awaiting(
                    user_id=person.user_id,
                    name=person.common_name,
                    approved_at=approval.created_at if approval else None,
                )
            )
        org = session.get(Organisation, ctx.organisation_id)
        return ApprovalsPage(
            organisation_code=ctx.organisation_code,
            required=policy_of(org).cards_need_sponsor_approval,
            people=tuple(rows),
        )


def _approval(session: Session, org_id: str, person_id: str) -> CardApproval | None:
    return session.scalar(
        select(CardApproval).where(
            CardApproval.organisation_id == org_id, CardApproval.person_id == person_id
        )
    )


def approve(rt: Runtime, ctx: RaContext, user_id: str) -> str:
    """Approve a card for a person of the organisation (audited); their name."""
    _require(ctx)
    with transaction(rt.db) as session:
        person = person_in_scope(session, ctx, user_id)
        if _approval(session, ctx.organisation_id, person.id) is not None:
            raise Conflict(f"A card for {person.common_name} is already approved.")
        session.add(
            CardApproval(
                organisation_id=ctx.organisation_id,
                person_id=person.id,
                approved_by=ctx.actor.ref.removeprefix("ra:"),
            )
        )
        ctx.audit_act(
            session,
            rt,
            AuditAction.CARD_APPROVED,
            person_id=person.id,
        )
        return person.common_name


def require_approved(session: Session, ctx: RaContext, person: Person) -> None:
    """NotApproved when the organisation wants a sponsor's approval and there is none."""
    org = session.get(Organisation, ctx.organisation_id)
    if not policy_of(org).cards_need_sponsor_approval:
        return
    if _approval(session, ctx.organisation_id, person.id) is None:
        raise NotApproved(
            f"{person.common_name} needs a sponsor's approval before a card is issued. Ask "
            "a sponsor of your organisation to approve it.",
            field="issuance_passcode",
        )
