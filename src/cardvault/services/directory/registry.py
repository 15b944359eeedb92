"""Organisations, persons, memberships and RA roles: who exists and who may act where."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError as DbIntegrityError
from sqlalchemy.orm import Session

from cardvault.domain import identifiers
from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.networks import parse_networks
from cardvault.domain.org_policy import OrganisationPolicy
from cardvault.domain.vocabulary import RaRole
from cardvault.errors import Conflict, InvalidInput, NotFound
from cardvault.json_types import JsonObject
from cardvault.services.audit import trail as audit
from cardvault.services.directory.errors import DuplicateUserId, UnknownOrganisation, UnknownPerson
from cardvault.services.directory.views import (
    OrganisationView,
    PersonDetails,
    PersonView,
    RoleView,
)
from cardvault.services.networks import ingress
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import Membership, Organisation, Person, RaRoleGrant
from cardvault.store.queries import role_grants


def get_org(session: Session, code: str) -> Organisation:
    """The organisation with this code; raises UnknownOrganisation."""
    org = session.scalar(
        select(Organisation).where(Organisation.code == identifiers.org_code(code))
    )
    if org is None:
        raise UnknownOrganisation(f"There is no organisation with code {code.strip().upper()}.")
    return org


def get_person(session: Session, user_id: str) -> Person:
    """The person with this user id; raises UnknownPerson."""
    person = session.scalar(select(Person).where(Person.user_id == identifiers.user_id(user_id)))
    if person is None:
        raise UnknownPerson(f"There is no person with user id {user_id}.")
    return person


def create_organisation(
    rt: Runtime,
    actor: Actor,
    *,
    code: str,
    name: str,
    networks: Sequence[str] = (),
    policy: JsonObject | None = None,
    allow_everywhere: bool = False,
) -> OrganisationView:
    """A new organisation with its networks and policy (audited).

    Raises InvalidInput for a bad code, name, network or policy, and Conflict when the
    code is taken; EverywhereNeedsConfirmation for a /0 without ``allow_everywhere``.
    """
    org_code = identifiers.org_code(code)
    org_name = identifiers.person_name(name, field="organisation_name")
    nets = list(parse_networks(networks, allow_everywhere=allow_everywhere))
    pol = OrganisationPolicy.from_dict(policy)
    with transaction(rt.db) as session:
        if session.scalar(select(Organisation.id).where(Organisation.code == org_code)):
            raise Conflict(f"An organisation with code {org_code} already exists.")
        org = Organisation(
            code=org_code, name=org_name, allowed_networks=nets, policy=pol.as_dict()
        )
        session.add(org)
        session.flush()
        audit.record(
            session,
            rt,
            actor,
            action=AuditAction.ORGANISATION_CREATED,
            organisation_id=org.id,
            details={"code": org_code, "networks": nets},
        )
        view = OrganisationView.of(org)
    ingress.networks_changed(rt)
    return view


def update_policy(rt: Runtime, actor: Actor, code: str, changes: JsonObject) -> OrganisationView:
    """Change some policy settings (audited); InvalidInput when the result is not valid."""
    with transaction(rt.db) as session:
        org = get_org(session, code)
        merged = {**org.policy, **changes}
        org.policy = OrganisationPolicy.from_dict(merged).as_dict()
        audit.record(
            session,
            rt,
            actor,
            action=AuditAction.ORGANISATION_POLICY_CHANGED,
            organisation_id=org.id,
            details={"changed": sorted(changes)},
        )
        return OrganisationView.of(org)


def list_organisations(rt: Runtime) -> list[OrganisationView]:
    """Every organisation, in code order."""
    with rt.db() as session:
        orgs = session.scalars(select(Organisation).order_by(Organisation.code))
        return [OrganisationView.of(org) for org in orgs]


def show_organisation(rt: Runtime, code: str) -> OrganisationView:
    """One organisation by its code; UnknownOrganisation when there is none."""
    with rt.db() as session:
        return OrganisationView.of(get_org(session, code))


@dataclass(frozen=True, kw_only=True)
class NewPerson:
    """A person to add to the directory."""

    user_id: str
    forename: str
    surname: str
    email: str | None = None
    phone: str | None = None
    common_name: str | None = None
    organisations: tuple[str, ...] = ()


def create_person(rt: Runtime, actor: Actor, new: NewPerson) -> PersonView:
    """A person as in the national directory, a member of the organisations given (audited).

    Raises InvalidInput for a malformed field, DuplicateUserId or Conflict when the user id
    or email address is taken, UnknownOrganisation for an unknown code.
    """
    uid = identifiers.user_id(new.user_id)
    fore = identifiers.person_name(new.forename, field="forename")
    sur = identifiers.person_name(new.surname, field="surname")
    mail = identifiers.email(new.email) if new.email else None
    tel = identifiers.phone(new.phone) if new.phone else None
    cn = identifiers.person_name(new.common_name or f"{fore} {sur}", field="common_name")
    with transaction(rt.db) as session:
        orgs = [get_org(session, code) for code in new.organisations]
        _refuse_duplicates(session, uid, mail)
        person = Person(
            user_id=uid, forename=fore, surname=sur, email=mail, phone=tel, common_name=cn
        )
        session.add(person)
        session.flush()
        org_ids: list[str | None] = [org.id for org in orgs] or [None]  # audited either way
        for org_id in org_ids:
            if org_id is not None:
                session.add(Membership(person_id=person.id, organisation_id=org_id))
            _record(session, rt, actor, AuditAction.PERSON_CREATED, person, org_id, user_id=uid)
        return PersonView.of(person)


def _refuse_duplicates(session: Session, uid: str, mail: str | None) -> None:
    if session.scalar(select(Person.id).where(Person.user_id == uid)):
        raise DuplicateUserId(f"A person with user id {uid} already exists.")
    if mail and session.scalar(select(Person.id).where(Person.email == mail)):
        raise Conflict(f"Another person already uses the email address {mail}.", field="email")


def add_membership(rt: Runtime, actor: Actor, user_id: str, org_code: str) -> None:
    """Make a person a member of an organisation (audited); raises UnknownPerson or
    UnknownOrganisation."""
    with transaction(rt.db) as session:
        person, org = get_person(session, user_id), get_org(session, org_code)
        if is_member(session, person.id, org.id):
            return
        session.add(Membership(person_id=person.id, organisation_id=org.id))
        _record(session, rt, actor, AuditAction.PERSON_MEMBERSHIP_ADDED, person, org.id)


def _record(
    session: Session,
    rt: Runtime,
    actor: Actor,
    action: AuditAction,
    person: Person,
    org_id: str | None,
    **details: str,
) -> None:
    """The audit event of a change to a person's place in the directory."""
    audit.record(
        session,
        rt,
        actor,
        person_id=person.id,
        organisation_id=org_id,
        action=action,
        details=details or None,
    )


def is_member(session: Session, person_id: str, org_id: str) -> bool:
    """Whether the person belongs to the organisation."""
    return (
        session.scalar(
            select(Membership.id).where(
                Membership.person_id == person_id, Membership.organisation_id == org_id
            )
        )
        is not None
    )


def person_organisations(session: Session, person_id: str) -> list[Organisation]:
    """The organisations a person belongs to, by code."""
    return list(
        session.scalars(
            select(Organisation)
            .join(Membership, Membership.organisation_id == Organisation.id)
            .where(Membership.person_id == person_id)
            .order_by(Organisation.code)
        )
    )


def show_person(rt: Runtime, user_id: str) -> PersonDetails:
    """A person, the organisations they belong to and their RA roles; UnknownPerson."""
    with rt.db() as session:
        person = get_person(session, user_id)
        roles = session.execute(
            select(Organisation.code, RaRoleGrant.role)
            .join(Organisation, Organisation.id == RaRoleGrant.organisation_id)
            .where(RaRoleGrant.person_id == person.id)
            .order_by(Organisation.code, RaRoleGrant.role)
        )
        return PersonDetails(
            person=PersonView.of(person),
            organisations=tuple(o.code for o in person_organisations(session, person.id)),
            roles=tuple(RoleView(organisation=code, role=role) for code, role in roles),
        )


def grant_role(rt: Runtime, actor: Actor, *, user_id: str, org_code: str, role: str) -> None:
    """An RA role in one organisation; the person becomes a member there too."""
    ra_role = _role(role)
    with transaction(rt.db) as session:
        person, org = get_person(session, user_id), get_org(session, org_code)
        if role_grants.holds(session, person.id, org.id, ra_role):
            raise Conflict(f"{person.common_name} already has the role {ra_role} in {org.code}.")
        if not is_member(session, person.id, org.id):
            session.add(Membership(person_id=person.id, organisation_id=org.id))
        session.add(
            RaRoleGrant(
                person_id=person.id,
                organisation_id=org.id,
                role=ra_role.value,
                granted_by=actor.ref,
            )
        )
        _record(session, rt, actor, AuditAction.RA_ROLE_GRANTED, person, org.id, role=ra_role.value)


def revoke_role(rt: Runtime, actor: Actor, *, user_id: str, org_code: str, role: str) -> None:
    """Take an RA role away (audited); raises NotFound if the person does not hold it,
    InvalidInput for an unknown role."""
    ra_role = _role(role)
    with transaction(rt.db) as session:
        person, org = get_person(session, user_id), get_org(session, org_code)
        grant = session.scalar(role_grants.grant_of(person.id, org.id, ra_role))
        if grant is None:
            raise NotFound(f"{person.common_name} has no role {ra_role.value} in {org.code}.")
        session.delete(grant)
        _record(session, rt, actor, AuditAction.RA_ROLE_REVOKED, person, org.id, role=ra_role.value)


def _role(text: str) -> RaRole:
    try:
        return RaRole(text.strip().lower().replace("-", "_"))
    except ValueError as exc:
        names = ", ".join(r.value for r in RaRole)
        raise InvalidInput(f"Unknown RA role {text!r}; use one of {names}.", field="role") from exc


def unique_violation(exc: DbIntegrityError) -> bool:
    """Whether a database error is a unique-constraint race (turned into Conflict)."""
    text = str(exc.orig).lower()
    return "unique" in text or "duplicate key" in text
