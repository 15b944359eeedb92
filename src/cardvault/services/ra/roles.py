"""RA roles in the RA manager's organisation: who holds which, giving and taking them, and
grants that wait for a second RA manager when the organisation's policy asks (issue 19).

A role is given only to a member of the organisation. A grant to someone else waits when
``role_grants_need_approval`` is set; any other RA manager approves or refuses it, never the
one who asked (checked in the atomic statement itself, ``store.queries.role_grants``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.vocabulary import RaPermission, RaRole, RoleGrantStatus
from cardvault.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from cardvault.services.ra.actions import RaContext
from cardvault.services.ra.errors import OwnRequest
from cardvault.services.ra.persons import person_in_scope
from cardvault.services.system.runtime import Runtime
from cardvault.store.db import transaction
from cardvault.store.models import Organisation, Person, RaRoleGrant, RoleGrantRequest
from cardvault.store.queries import role_grants
from cardvault.store.queries.organisations import policy_of


@dataclass(frozen=True, kw_only=True)
class RoleHeld:
    """An RA role someone holds in the organisation, and since when."""

    user_id: str
    name: str
    role: RaRole
    since: datetime


@dataclass(frozen=True, kw_only=True)
class PendingGrant:
    """A role change that waits for a second RA manager's approval."""

    id: str
    user_id: str
    name: str
    role: RaRole
    requested_by: str
    requested_at: datetime
    #: whether the RA looking at it asked for it (and so may not approve it)
    mine: bool


@dataclass(frozen=True, kw_only=True)
class RolesPage:
    """The roles page: who holds which role, what waits, whether changes need approval."""

    organisation_code: str
    held: tuple[RoleHeld, ...]
    pending: tuple[PendingGrant, ...]
    needs_approval: bool


def _acting_person(ctx: RaContext) -> str:
    return ctx.actor.ref.removeprefix("ra:")


def _require(ctx: RaContext) -> None:
    if not RaRole(ctx.role).allows(RaPermission.GRANT_ROLES):
        raise PermissionDenied("Only an RA manager may give or take away RA roles.")


def page(rt: Runtime, ctx: RaContext) -> RolesPage:
    """The organisation's roles and waiting changes; raises PermissionDenied unless an RA
    manager asks."""
    _require(ctx)
    with rt.db() as session:
        org = session.get(Organisation, ctx.organisation_id)
        return RolesPage(
            organisation_code=ctx.organisation_code,
            held=_held(session, ctx),
            pending=_pending(session, ctx),
            needs_approval=policy_of(org).role_grants_need_approval,
        )


def _held(session: Session, ctx: RaContext) -> tuple[RoleHeld, ...]:
    rows = session.execute(
        select(Person, RaRoleGrant)
        .join(RaRoleGrant, RaRoleGrant.person_id == Person.id)
        .where(RaRoleGrant.organisation_id == ctx.organisation_id)
        .order_by(Person.surname, Person.forename, RaRoleGrant.role)
    )
    return tuple(
        RoleHeld(user_id=p.user_id, name=p.common_name, role=g.role, since=g.created_at)
        for p, g in rows
    )


def _pending(session: Session, ctx: RaContext) -> tuple[PendingGrant, ...]:
    asker = aliased(Person)
    rows = session.execute(
        select(RoleGrantRequest, Person, asker)
        .join(Person, Person.id == RoleGrantRequest.person_id)
        .join(asker, asker.id == RoleGrantRequest.requested_by)
        .where(
            RoleGrantRequest.organisation_id == ctx.organisation_id,
            RoleGrantRequest.status == RoleGrantStatus.PENDING,
        )
        .order_by(RoleGrantRequest.created_at)
    )
    me = _acting_person(ctx)
    return tuple(
        PendingGrant(
            id=r.id,
            user_id=p.user_id,
            name=p.common_name,
            role=r.role,
            requested_by=a.common_name,
            requested_at=r.created_at,
            mine=r.requested_by == me,
        )
        for r, p, a in rows
    )


def parse_role(text: str) -> RaRole:
    """The role named in a form; raises InvalidInput (field ``role``) for any other text."""
    try:
        return RaRole(text.strip())
    except ValueError:
        raise InvalidInput("Choose a role from the list.", field="role") from None


def grant(rt: Runtime, ctx: RaContext, user_id: str, role: str) -> bool:
    """Give ``role`` to a member of the organisation (audited); False when the grant now waits
    for a second RA manager. Conflict when they hold it or a request for it waits already."""
    _require(ctx)
    ra_role = parse_role(role)
    with transaction(rt.db) as session:
        person = person_in_scope(session, ctx, user_id)
        _refuse_duplicate(session, ctx, person, ra_role)
        org = session.get(Organisation, ctx.organisation_id)
        me = _acting_person(ctx)
        if policy_of(org).role_grants_need_approval and person.id != me:
            session.add(
                RoleGrantRequest(
                    organisation_id=ctx.organisation_id,
                    person_id=person.id,
                    role=ra_role,
                    requested_by=me,
                )
            )
            _record(session, rt, ctx, AuditAction.RA_ROLE_REQUESTED, person.id, ra_role)
            return False
        _add_grant(session, rt, ctx, person.id, ra_role)
        return True


def _refuse_duplicate(session: Session, ctx: RaContext, person: Person, role: RaRole) -> None:
    if role_grants.holds(session, person.id, ctx.organisation_id, role):
        raise Conflict(f"{person.common_name} already has the role {role.label}.", field="role")
    waiting = session.scalar(
        select(RoleGrantRequest.id).where(
            RoleGrantRequest.organisation_id == ctx.organisation_id,
            RoleGrantRequest.person_id == person.id,
            RoleGrantRequest.role == role,
            RoleGrantRequest.status == RoleGrantStatus.PENDING,
        )
    )
    if waiting is not None:
        raise Conflict(
            f"A request to give {person.common_name} the role {role.label} is already "
            "waiting for a second RA manager.",
            field="role",
        )


def _add_grant(session: Session, rt: Runtime, ctx: RaContext, person_id: str, role: RaRole) -> None:
    if role_grants.holds(session, person_id, ctx.organisation_id, role):
        return
    session.add(
        RaRoleGrant(
            person_id=person_id,
            organisation_id=ctx.organisation_id,
            role=role,
            granted_by=ctx.actor.ref,
        )
    )
    _record(session, rt, ctx, AuditAction.RA_ROLE_GRANTED, person_id, role)


def _record(
    session: Session,
    rt: Runtime,
    ctx: RaContext,
    action: AuditAction,
    person_id: str,
    role: RaRole,
) -> None:
    ctx.audit_act(
        session,
        rt,
        action,
        person_id=person_id,
        details={"role": role.value},
    )


def decide(rt: Runtime, ctx: RaContext, request_id: str, *, approve: bool) -> PendingGrant:
    """Approve (the role is given) or refuse a waiting grant (audited).

    OwnRequest when the RA asked for it themselves; NotFound when there is no such waiting
    request in this organisation (or another RA manager decided it a moment ago).
    """
    _require(ctx)
    me = _acting_person(ctx)
    with transaction(rt.db) as session:
        shown = next((p for p in _pending(session, ctx) if p.id == request_id), None)
        if shown is None:
            raise NotFound("There is no such request waiting (another RA manager may have "
                           "decided it).")  # fmt: skip
        if shown.mine:
            raise OwnRequest("You asked for this grant; another RA manager must approve it.")
        status = RoleGrantStatus.APPROVED if approve else RoleGrantStatus.REFUSED
        won = role_grants.decide(
            session,
            request_id,
            organisation_id=ctx.organisation_id,
            status=status,
            by=me,
            now=rt.clock(),
        )
        if not won:
            raise NotFound("Another RA manager decided this request a moment ago.")
        request = session.get(RoleGrantRequest, request_id)
        assert request is not None
        if approve:
            _add_grant(session, rt, ctx, request.person_id, request.role)
        else:
            _record(session, rt, ctx, AuditAction.RA_ROLE_REQUEST_REFUSED, request.person_id,
                    request.role)  # fmt: skip
        return shown


def take_away(rt: Runtime, ctx: RaContext, user_id: str, role: str) -> None:
    """Withdraw a role in this organisation (audited); an RA manager cannot withdraw the role
    they are acting under (another RA manager does)."""
    _require(ctx)
    ra_role = parse_role(role)
    with transaction(rt.db) as session:
        person = person_in_scope(session, ctx, user_id)
        if person.id == _acting_person(ctx) and ra_role == ctx.role:
            raise Conflict("You cannot take away the role you are using now.", field="role")
        held = session.scalar(role_grants.grant_of(person.id, ctx.organisation_id, ra_role))
        if held is None:
            raise NotFound(f"{person.common_name} does not have the role {ra_role.label}.")
        session.delete(held)
        _record(session, rt, ctx, AuditAction.RA_ROLE_REVOKED, person.id, ra_role)
