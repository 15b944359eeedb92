"""Audit events as an RA of one organisation reads them: who acted, by name and role, and
what happened, in words.

The chain records actors as references (``ra:<person id>``, ``holder:<person id>``,
``device:<id>``, ``cli:<login>``, ``system``, ``anonymous``); this module turns them into
"Rana Issuer (RA agent)", "Alice Smith (holder)" or "Operator (command line)". Names are
looked up only among the organisation's own people (its members and the holders of an RA
role in it) and its own devices and cards: anyone or anything else is shown by kind only,
so the log never tells an RA who exists in another organisation. A person's role is the
one they hold in the organisation now (the chain does not record roles).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from cardvault.domain.audit_phrases import describe
from cardvault.domain.vocabulary import RaRole
from cardvault.json_types import JsonValue
from cardvault.store.models import AuditEvent, Card, Device, Membership, Person, RaRoleGrant

ROLE_NAMES = {
    RaRole.RA_MANAGER: "RA manager",
    RaRole.RA_AGENT: "RA agent",
    RaRole.AUDITOR: "auditor",
    RaRole.SPONSOR: "sponsor",
}
FIXED_ACTORS = {
    "system": "cardvault (automatic)",
    "anonymous": "Someone not signed in",
    "holder:portal": "Card holder (self-service portal)",
}
OPERATOR = "Operator (command line)"
OUTSIDER = "Someone outside this organisation"
UNKNOWN_DEVICE = "A paired phone"
#: ids per IN list (well under SQLite's and PostgreSQL's limits on bound parameters)
BATCH = 500


@dataclass(frozen=True, kw_only=True)
class AuditEventView:
    """One event as the vRA Manager shows it; the codes stay for the CSV and for filters."""

    seq: int
    occurred_at: str
    action: str
    phrase: str
    outcome: str
    reason: str | None
    actor_ref: str
    actor: str
    person: str
    card: str
    details: Mapping[str, JsonValue]


@dataclass(frozen=True)
class _Directory:
    """Who and what the events name, limited to one organisation."""

    people: dict[str, tuple[str, str]] = field(default_factory=dict)  # id → (name, user id)
    roles: dict[str, list[str]] = field(default_factory=dict)  # person id → role labels
    devices: dict[str, tuple[str, str]] = field(default_factory=dict)  # id → (name, person id)
    cards: dict[str, str] = field(default_factory=dict)  # id → serial


def views(
    session: Session, organisation_id: str, events: Iterable[AuditEvent]
) -> list[AuditEventView]:
    """The events with names resolved within ``organisation_id`` (events of its chain)."""
    rows = list(events)
    directory = _directory(session, organisation_id, rows)
    return [_view(e, directory) for e in rows]


def _refs(rows: list[AuditEvent], kinds: tuple[str, ...]) -> set[str]:
    out = set()
    for e in rows:
        kind, _, value = (e.actor or "").partition(":")
        if kind in kinds and value:
            out.add(value)
    return out


def _batches(ids: set[str]) -> Iterator[list[str]]:
    """Ids in slices small enough for one IN list on either database (a CSV export may name
    many thousands of people)."""
    ordered = sorted(ids)
    for start in range(0, len(ordered), BATCH):
        yield ordered[start : start + BATCH]


def _directory(session: Session, org_id: str, rows: list[AuditEvent]) -> _Directory:
    devices = _devices(session, org_id, _refs(rows, ("device",)))
    person_ids = _refs(rows, ("ra", "holder")) | {e.person_id for e in rows if e.person_id}
    people = _people(session, org_id, person_ids | {p for _, p in devices.values()})
    return _Directory(
        people=people,
        roles=_roles(session, org_id, set(people)),
        devices=devices,
        cards=_cards(session, org_id, {e.card_id for e in rows if e.card_id}),
    )


def _members(org_id: str) -> Select[str]:
    return select(Membership.person_id).where(Membership.organisation_id == org_id)


def _devices(session: Session, org_id: str, ids: set[str]) -> dict[str, tuple[str, str]]:
    stmt = (
        select(Device.id, Device.name, Card.person_id)
        .join(Card, Card.id == Device.card_id)
        .where(Device.organisation_id == org_id)
    )
    return {
        row.id: (row.name, row.person_id)
        for batch in _batches(ids)
        for row in session.execute(stmt.where(Device.id.in_(batch)))
    }


def _people(session: Session, org_id: str, ids: set[str]) -> dict[str, tuple[str, str]]:
    """Members of the organisation, and holders of an RA role in it; nobody else."""
    staff = select(RaRoleGrant.person_id).where(RaRoleGrant.organisation_id == org_id)
    stmt = select(Person.id, Person.common_name, Person.user_id).where(
        or_(Person.id.in_(_members(org_id)), Person.id.in_(staff))
    )
    return {
        row.id: (row.common_name, row.user_id)
        for batch in _batches(ids)
        for row in session.execute(stmt.where(Person.id.in_(batch)))
    }


def _roles(session: Session, org_id: str, person_ids: set[str]) -> dict[str, list[str]]:
    """The RA roles each person holds in the organisation now, in the order of ``RaRole``."""
    stmt = select(RaRoleGrant.person_id, RaRoleGrant.role).where(
        RaRoleGrant.organisation_id == org_id
    )
    held: dict[str, set[RaRole]] = {}
    for batch in _batches(person_ids):
        for row in session.execute(stmt.where(RaRoleGrant.person_id.in_(batch))):
            held.setdefault(row.person_id, set()).add(RaRole(row.role))
    return {p: [ROLE_NAMES[r] for r in RaRole if r in roles] for p, roles in held.items()}


def _cards(session: Session, org_id: str, ids: set[str]) -> dict[str, str]:
    """Serials of the cards of the organisation's members (as the audit filter finds them)."""
    stmt = select(Card.id, Card.serial).where(Card.person_id.in_(_members(org_id)))
    return {
        row.id: row.serial
        for batch in _batches(ids)
        for row in session.execute(stmt.where(Card.id.in_(batch)))
    }


def _view(e: AuditEvent, directory: _Directory) -> AuditEventView:
    person = directory.people.get(e.person_id or "")
    return AuditEventView(
        seq=e.seq,
        occurred_at=e.occurred_at,
        action=e.action,
        phrase=describe(e.action, e.outcome, reason=e.reason, details=e.details),
        outcome=e.outcome,
        reason=e.reason,
        actor_ref=e.actor or "",
        actor=_actor_name(e.actor, directory),
        person=f"{person[0]} ({person[1]})" if person else (OUTSIDER if e.person_id else ""),
        card=directory.cards.get(e.card_id or "", ""),
        details=e.details,
    )


def _actor_name(ref: str | None, directory: _Directory) -> str:
    """The actor as an RA clerk reads it; never a raw id."""
    if not ref:
        return "Not recorded"
    if ref in FIXED_ACTORS:
        return FIXED_ACTORS[ref]
    kind, _, value = ref.partition(":")
    if kind == "cli":
        return OPERATOR
    if kind in ("ra", "holder"):
        return _person(value, directory, "RA staff" if kind == "ra" else "holder")
    if kind == "device":
        return _device(value, directory)
    return f"Other ({kind})"


def _person(person_id: str, directory: _Directory, default_role: str) -> str:
    found = directory.people.get(person_id)
    if found is None:
        return OUTSIDER
    roles = directory.roles.get(person_id)
    return f"{found[0]} ({', '.join(roles) if roles else default_role})"


def _device(device_id: str, directory: _Directory) -> str:
    found = directory.devices.get(device_id)
    if found is None:
        return UNKNOWN_DEVICE
    name, person_id = found
    owner = directory.people.get(person_id)
    return f"{name} (phone of {owner[0]})" if owner else f"{name} (paired phone)"
