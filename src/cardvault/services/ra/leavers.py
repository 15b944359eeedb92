"""Leavers (issue 19): a person leaves the RA's organisation, and later, when they belong to
none, is erased (GDPR) except for the audit trail's pseudonymous references.

Leaving is one transaction: the methods and phones bound to this organisation, the card
when this was the person's last organisation, and the membership, roles and approvals here
go together or not at all (a failure anywhere leaves the person exactly as they were, and
the RA records the leaver again). Only what others must hear of after the commit follows
it: the phones' event streams and the re-signed CRL.

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
from cardvault.errors import InvalidInput, NotFound, PermissionDenied
from cardvault.services.cards import issuance
from cardvault.services.cards import methods as card_methods
from cardvault.services.devices import registry as devices
from cardvault.services.devices.channel import ACTIVE
from cardvault.services.pki import crl as crls
from cardvault.services.ra.actions import RaContext
from cardvault.services.ra.persons import current_card, person_in_scope
from cardvault.services.system.runtime import Runtime
from cardvault.store.db import transaction
from cardvault.store.models import (
    Association,
    Card,
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
    """Record that a person left the RA's organisation (audited), in one transaction: the
    methods and phones bound to it, the card when it was their last organisation, and the
    membership, roles and approvals here go together or not at all. NotFound when the
    person is not (or no longer) a member; PermissionDenied, InvalidInput."""
    if not RaRole(ctx.role).allows(RaPermission.MANAGE_PEOPLE):
        raise PermissionDenied("Only an RA manager or agent may record a leaver.")
    reason = " ".join(reason.split())
    if not reason or len(reason) > 500:
        raise InvalidInput("Say why they left, in at most 500 characters.", field="reason")
    with transaction(rt.db) as session:
        person = person_in_scope(session, ctx, user_id)
        # two RAs recording the same leaver: the second waits here, then finds no membership
        _lock_membership(session, ctx, person.id)
        card = current_card(session, person.id)
        others = _other_memberships(session, person.id, ctx.organisation_id)
        removed = _remove_scoped(session, rt, ctx, card)
        revoked = card is not None and card.status.is_live and not others
        if card is not None and revoked:
            issuance.revoke_in_session(
                session,
                rt,
                ctx.actor,
                card,
                f"Left {ctx.organisation_code}: {reason}",
                "affiliationChanged",
            )
        _end_membership(session, rt, ctx, person, reason, revoked=revoked, last=not others)
    for device_id in removed.devices:
        devices.published_revocation(rt, device_id)
    if revoked:
        crls.publish_after_change(rt)
    return LeaverResult(
        name=person.common_name,
        card_revoked=revoked,
        methods_removed=len(removed.associations) + len(removed.devices),
        still_in=tuple(others),
    )


@dataclass(frozen=True)
class _Scoped:
    associations: tuple[str, ...]
    devices: tuple[str, ...]


def _lock_membership(session: Session, ctx: RaContext, person_id: str) -> None:
    membership = session.scalar(
        select(Membership)
        .where(Membership.person_id == person_id, Membership.organisation_id == ctx.organisation_id)
        .with_for_update()
    )
    if membership is None:
        raise NotFound("There is no such person in your organisation.")


def _remove_scoped(session: Session, rt: Runtime, ctx: RaContext, card: Card | None) -> _Scoped:
    """The card's methods and active phones in this organisation, removed (each audited)."""
    if card is None:
        return _Scoped((), ())
    org_id = ctx.organisation_id
    assocs = list(
        session.scalars(
            select(Association).where(
                Association.card_id == card.id, Association.organisation_id == org_id
            )
        )
    )
    phones = list(
        session.scalars(
            select(Device)
            .where(
                Device.card_id == card.id,
                Device.organisation_id == org_id,
                Device.status == ACTIVE,
            )
            .with_for_update()
        )
    )
    for assoc in assocs:
        card_methods.remove_in_session(session, rt, ctx.actor, card, assoc)
    for phone in phones:
        devices.revoke_in_session(session, rt, ctx.actor, phone, "removed")
    return _Scoped(tuple(a.id for a in assocs), tuple(p.id for p in phones))


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
    session: Session,
    rt: Runtime,
    ctx: RaContext,
    person: Person,
    reason: str,
    *,
    revoked: bool,
    last: bool,
) -> None:
    for model in (Membership, RaRoleGrant, CardApproval):
        session.execute(
            delete(model).where(
                model.person_id == person.id, model.organisation_id == ctx.organisation_id
            )
        )
    session.execute(
        delete(RoleGrantRequest).where(
            RoleGrantRequest.person_id == person.id,
            RoleGrantRequest.organisation_id == ctx.organisation_id,
        )
    )
    if last:
        person.left_at = rt.clock()
    ctx.audit_act(
        session,
        rt,
        AuditAction.PERSON_LEFT,
        person_id=person.id,
        details={"reason": reason, "card_revoked": revoked, "last_organisation": last},
    )
