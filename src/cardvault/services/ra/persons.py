"""Finding and showing persons for an RA, within the organisation they act in (DESIGN §3.6).

Every query here joins ``memberships`` on the acting organisation: a person, card,
association, device or event of another organisation is simply not found (404), so the
caller cannot even learn that it exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from cardvault.domain import identifiers
from cardvault.domain.vocabulary import CardStatus, MethodKind, MethodStatus
from cardvault.domain.webauthn import aaguid_name
from cardvault.errors import InvalidInput, NotFound
from cardvault.services.audit import display as audit_display
from cardvault.services.audit.display import AuditEventView
from cardvault.services.cards.views import CardInfo, CertificateInfo, MethodView
from cardvault.services.directory.views import PersonView
from cardvault.services.piv.image import DesktopNames, desktop_names
from cardvault.services.ra.actions import RaContext
from cardvault.services.system.runtime import Runtime
from cardvault.store.models import (
    Association,
    AuditEvent,
    Card,
    Certificate,
    Device,
    Link,
    Membership,
    Person,
    SecurityQuestion,
)
from cardvault.store.rows import view_of

MAX_RESULTS = 50
RECENT_EVENTS = 10


@dataclass(frozen=True, kw_only=True)
class PersonRow:
    """A person in the RA's search results, with their card if they have one."""

    user_id: str
    name: str
    email: str | None
    card_serial: str | None
    card_status: CardStatus | None


@dataclass(frozen=True, kw_only=True)
class MethodShown:
    """What an RA sees of an association: never its secret."""

    id: str
    method: MethodKind
    label: str | None
    #: shown for the methods whose identifier means something to an RA (AD name, HR card)
    identifier: str | None
    status: MethodStatus
    aaguid: str | None
    authenticator: str | None
    created_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class DeviceShown:
    """A paired phone as an RA sees it."""

    name: str
    platform: str
    application: str
    status: str
    created_at: datetime
    last_seen_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class PersonDetail:
    """A person's page: card, certificates, methods, phones and recent events."""

    person: PersonView
    card: CardInfo | None
    #: the card's names in smartcard software, once it has a PIV applet
    smartcard: DesktopNames | None
    certificates: tuple[CertificateInfo, ...]
    associations: tuple[MethodShown, ...]
    devices: tuple[DeviceShown, ...]
    questions: list[str]
    events: list[AuditEventView]
    invitation_pending: bool


def _members(org_id: str) -> Select[Person]:
    return (
        select(Person)
        .join(Membership, Membership.person_id == Person.id)
        .where(Membership.organisation_id == org_id)
    )


def _like(text: str) -> str:
    escaped = re.sub(r"([\\%_])", r"\\\1", text.casefold())
    return f"%{escaped}%"


def find(rt: Runtime, ctx: RaContext, query: str) -> list[PersonRow]:
    """By name (any part), email, user id or card serial; only this organisation's members."""
    q = " ".join((query or "").split())
    if not q:
        return []
    if len(q) > 200:
        raise InvalidInput("Search for at most 200 characters.", field="q")
    stmt = _members(ctx.organisation_id)
    compact = re.sub(r"[\s-]", "", q)
    if compact.isdigit() and len(compact) == 12:
        stmt = stmt.where(Person.user_id == compact)
    elif re.fullmatch(r"(?i)CV[0-9A-Z]{10}", compact):
        stmt = stmt.join(Card, Card.person_id == Person.id).where(
            Card.serial == identifiers.card_serial(compact)
        )
    else:
        pattern = _like(q)
        stmt = stmt.where(
            or_(
                func.lower(Person.common_name).like(pattern, escape="\\"),
                func.lower(Person.email).like(pattern, escape="\\"),
                func.lower(Person.forename + " " + Person.surname).like(pattern, escape="\\"),
            )
        )
    with rt.db() as session:
        people = list(session.scalars(stmt.order_by(Person.surname, Person.forename).limit(50)))
        return [_row(session, p) for p in people]


def _row(session: Session, person: Person) -> PersonRow:
    card = current_card(session, person.id)
    return PersonRow(
        user_id=person.user_id,
        name=person.common_name,
        email=person.email,
        card_serial=card.serial if card else None,
        card_status=card.status if card else None,
    )


def current_card(session: Session, person_id: str) -> Card | None:
    """The person's live card, or else their most recent (revoked) one."""
    cards = list(
        session.scalars(
            select(Card).where(Card.person_id == person_id).order_by(Card.created_at.desc())
        )
    )
    live = [c for c in cards if c.status.is_live]
    chosen = live or cards
    return chosen[0] if chosen else None


def person_in_scope(session: Session, ctx: RaContext, user_id: str) -> Person:
    """The person if they belong to the RA's organisation; raises NotFound otherwise
    (outside the scope looks the same as unknown)."""
    try:
        uid = identifiers.user_id(user_id)
    except InvalidInput:
        raise NotFound("There is no such person in your organisation.") from None
    person = session.scalar(_members(ctx.organisation_id).where(Person.user_id == uid))
    if person is None:
        raise NotFound("There is no such person in your organisation.")
    return person


def card_in_scope(session: Session, ctx: RaContext, user_id: str, *, live: bool = True) -> Card:
    """The person's current card; NotFound when they have none (or none that is live)."""
    person = person_in_scope(session, ctx, user_id)
    card = current_card(session, person.id)
    if card is None or (live and card.status == CardStatus.REVOKED):
        raise NotFound(f"{person.common_name} has no card.")
    return card


def detail(rt: Runtime, ctx: RaContext, user_id: str) -> PersonDetail:
    """A person's page: card, methods, phones and recent events; raises NotFound."""
    with rt.db() as session:
        person = person_in_scope(session, ctx, user_id)
        card = current_card(session, person.id)
        return PersonDetail(
            person=PersonView.of(person),
            card=CardInfo.of(card) if card else None,
            smartcard=desktop_names(session, card.id) if card else None,
            certificates=_certificates(session, card),
            associations=_associations(session, ctx, card),
            devices=_devices(session, ctx, card),
            questions=_questions(session, card),
            events=recent_events(session, ctx, person.id),
            invitation_pending=_invitation_pending(rt, session, card),
        )


def _certificates(session: Session, card: Card | None) -> tuple[CertificateInfo, ...]:
    if card is None:
        return ()
    rows = session.scalars(
        select(Certificate).where(Certificate.card_id == card.id).order_by(Certificate.created_at)
    )
    return tuple(CertificateInfo.of(c) for c in rows)


def _associations(session: Session, ctx: RaContext, card: Card | None) -> tuple[MethodShown, ...]:
    if card is None:
        return ()
    rows = session.scalars(
        select(Association)
        .where(Association.card_id == card.id, Association.organisation_id == ctx.organisation_id)
        .order_by(Association.created_at)
    )
    return tuple(association_view(MethodView.of(a)) for a in rows)


def association_view(a: MethodView) -> MethodShown:
    """What an RA sees of an association: never its secret."""
    aaguid = a.aaguid
    shown = a.label or a.lookup_key
    if a.method is MethodKind.TOTP:
        shown = a.label or "Authenticator app"
    return MethodShown(
        id=a.id,
        method=a.method,
        label=shown,
        identifier=a.lookup_key if a.method.has_public_identifier else None,
        status=a.status,
        aaguid=aaguid,
        authenticator=aaguid_name(aaguid) if aaguid else None,
        created_at=a.created_at,
        last_used_at=a.last_used_at,
    )


def _devices(session: Session, ctx: RaContext, card: Card | None) -> tuple[DeviceShown, ...]:
    if card is None:
        return ()
    rows = session.scalars(
        select(Device).where(
            Device.card_id == card.id, Device.organisation_id == ctx.organisation_id
        )
    )
    return tuple(view_of(DeviceShown, d) for d in rows)


def _questions(session: Session, card: Card | None) -> list[str]:
    if card is None:
        return []
    return list(
        session.scalars(
            select(SecurityQuestion.question)
            .where(SecurityQuestion.card_id == card.id)
            .order_by(SecurityQuestion.position)
        )
    )


def _invitation_pending(rt: Runtime, session: Session, card: Card | None) -> bool:
    if card is None:
        return False
    return (
        session.scalar(
            select(Link.id).where(
                Link.card_id == card.id,
                Link.purpose == "invitation",
                Link.consumed_at.is_(None),
                Link.revoked_at.is_(None),
                Link.expires_at > rt.clock(),
            )
        )
        is not None
    )


def recent_events(session: Session, ctx: RaContext, person_id: str) -> list[AuditEventView]:
    """The person's latest audit events in this organisation, in words."""
    rows = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.organisation_id == ctx.organisation_id, AuditEvent.person_id == person_id)
        .order_by(AuditEvent.seq.desc())
        .limit(RECENT_EVENTS)
    )
    return audit_display.views(session, ctx.organisation_id, rows)


def require_person(rt: Runtime, ctx: RaContext, user_id: str) -> None:
    """NotFound unless the person belongs to the RA's organisation (checked before anything)."""
    with rt.db() as session:
        person_in_scope(session, ctx, user_id)
