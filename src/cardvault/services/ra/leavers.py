"""Leavers (issue 19): a person leaves the RA's organisation, and later, when they belong to
none, is erased (GDPR) except for the audit trail's pseudonymous references.

Leaving takes the steps in an order that can be repeated: the methods and phones bound to
this organisation go first, then the card when this was the person's last organisation,
and last of all, in one transaction, the membership, roles and approval here. If a step
fails, the person is still a member and the RA simply records the leaver again.

A person who left their last organisation is erased after its retention period by
``services.directory.erasure`` (``cardvault maintenance erase-leavers`` and the service's
housekeeping).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.vocabulary import RaPermission, RaRole
from cardvault.errors import InvalidInput, PermissionDenied
from cardvault.services.audit import trail as audit
from cardvault.services.cards import issuance
from cardvault.services.cards import methods as card_methods
from cardvault.services.devices import registry as devices
from cardvault.services.ra.actions import RaContext
from cardvault.services.ra.persons import current_card, person_in_scope
from cardvault.services.system.runtime import Runtime
from cardvault.store.db import transaction
from cardvault.store.models import (
    Association,
    CardApproval,
    Device,
    Membership,
    Organisation,
    Person,
    RaRoleGrant,
    RoleGrantRequest,
)


@dataclass(frozen=True, kw_only=True)
class LeaverResult:
    """What marking a leaver did: card revoked, methods removed, organisations still theirs."""

    name: str
    card_revoked: bool
    methods_removed: int
    #: the organisations the person still belongs to (their card works there)
    still_in: tuple[str, ...]


def leave(rt: Runtime, ctx: RaContext, user_id: str, reason: str) -> LeaverResult:
    """Record that a person left the RA's organisation (audited). See the module's note."""
    if not RaRole(ctx.role).allows(RaPermission.MANAGE_PEOPLE):
        raise PermissionDenied("Only an RA manager or agent may record a leaver.")
    reason = " ".join(reason.split())
    if not reason or len(reason) > 500:
        raise InvalidInput("Say why they left, in at most 500 characters.", field="reason")
    with rt.db() as session:
        person = person_in_scope(session, ctx, user_id)
        card = current_card(session, person.id)
        others = _other_memberships(session, person.id, ctx.organisation_id)
        scoped = _scoped_methods(session, ctx.organisation_id, card.id if card else None)
    for association_id in scoped.associations:
        card_methods.remove_method(
            rt, ctx.actor, association_id, organisation_id=ctx.organisation_id
        )
    for device_id in scoped.devices:
        devices.revoke(rt, ctx.actor, device_id, organisation_id=ctx.organisation_id)
    revoked = False
    if card is not None and card.status.is_live and not others:
        issuance.revoke_card(
            rt,
            ctx.actor,
            card.serial,
            reason=f"Left {ctx.organisation_code}: {reason}",
            organisation_id=ctx.organisation_id,
            reason_code="affiliationChanged",
        )
        revoked = True
    name = _end_membership(rt, ctx, person.id, reason, revoked=revoked, last=not others)
    return LeaverResult(
        name=name,
        card_revoked=revoked,
        methods_removed=len(scoped.associations) + len(scoped.devices),
        still_in=tuple(others),
    )


@dataclass(frozen=True)
class _Scoped:
    associations: tuple[str, ...]
    devices: tuple[str, ...]


def _scoped_methods(session: Session, org_id: str, card_id: str | None) -> _Scoped:
    if card_id is None:
        return _Scoped((), ())
    assocs = session.scalars(
        select(Association.id).where(
            Association.card_id == card_id, Association.organisation_id == org_id
        )
    )
    phones = session.scalars(
        select(Device.id).where(
            Device.card_id == card_id, Device.organisation_id == org_id, Device.status == "active"
        )
    )
    return _Scoped(tuple(assocs), tuple(phones))


def _other_memberships(session: Session, person_id: str, org_id: str) -> list[str]:
    return list(
        session.scalars(
            select(Organisation.code)
            .join(Membership, Membership.organisation_id == Organisation.id)
            .where(Membership.person_id == person_id, Membership.organisation_id != org_id)
            .order_by(Organisation.code)
        )
    )


def _end_membership(
    rt: Runtime, ctx: RaContext, person_id: str, reason: str, *, revoked: bool, last: bool
) -> str:
    with transaction(rt.db) as session:
        person = session.get(Person, person_id)
        assert person is not None
        for model in (Membership, RaRoleGrant, CardApproval):
            session.execute(
                delete(model).where(
                    model.person_id == person_id, model.organisation_id == ctx.organisation_id
                )
            )
        session.execute(
            delete(RoleGrantRequest).where(
                RoleGrantRequest.person_id == person_id,
                RoleGrantRequest.organisation_id == ctx.organisation_id,
            )
        )
        if last:
            person.left_at = rt.clock()
        audit.record(
            session,
            rt,
            ctx.actor,
            action=AuditAction.PERSON_LEFT,
            organisation_id=ctx.organisation_id,
            person_id=person_id,
            details={"reason": reason, "card_revoked": revoked, "last_organisation": last},
        )
        return person.common_name
