"""The audit log as an RA reads it: their organisation's chain only, filtered and paged.

Filters are by person (user id), card (serial), action (exact, or a prefix ending in
``.``), outcome and date range (UTC days). A person or card outside the organisation
matches nothing, as if it did not exist. The CSV export runs the same query and writes
through the audit module's formula-neutralising writer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from cardvault.domain import identifiers
from cardvault.errors import InvalidInput, NotFound
from cardvault.services.audit import display as audit_display
from cardvault.services.audit import trail as audit
from cardvault.services.audit.display import AuditEventView
from cardvault.services.ra.actions import RaContext
from cardvault.services.ra.persons import person_in_scope
from cardvault.services.system.runtime import Runtime
from cardvault.store.models import AuditEvent, Card, Membership

PAGE_SIZE = 25
OUTCOMES = ("success", "failure")
CSV_HEADER = (
    "occurred_at",
    "action",
    "what_happened",
    "outcome",
    "reason",
    "actor",
    "who_acted",
    "person",
    "card",
    "details",
)


@dataclass(frozen=True, kw_only=True)
class AuditFilter:
    """What the RA's audit search looks for (empty fields match everything)."""

    person: str = ""
    card: str = ""
    action: str = ""
    outcome: str = ""
    date_from: str = ""
    date_to: str = ""


@dataclass(frozen=True, kw_only=True)
class AuditPage:
    """One page of audit events in words, and how many there are."""

    events: list[AuditEventView]
    page: int
    pages: int
    total: int


def _day(text: str, field: str) -> date | None:
    if not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput("Enter a date like 2026-11-28.", field=field) from None


def _query(session: Session, ctx: RaContext, f: AuditFilter) -> Select[AuditEvent]:
    stmt = select(AuditEvent).where(AuditEvent.organisation_id == ctx.organisation_id)
    if f.person.strip():
        try:
            person_id = person_in_scope(session, ctx, f.person).id
        except NotFound:  # outside the organisation: matches nothing, says nothing
            person_id = "-"
        stmt = stmt.where(AuditEvent.person_id == person_id)
    if f.card.strip():
        serial = identifiers.card_serial(f.card)
        card_id = session.scalar(
            select(Card.id)
            .join(Membership, Membership.person_id == Card.person_id)
            .where(Card.serial == serial, Membership.organisation_id == ctx.organisation_id)
        )
        stmt = stmt.where(AuditEvent.card_id == (card_id or "-"))
    if f.action.strip():
        action = f.action.strip()
        stmt = stmt.where(
            AuditEvent.action.startswith(action)
            if action.endswith(".")
            else AuditEvent.action == action
        )
    if f.outcome:
        if f.outcome not in OUTCOMES:
            raise InvalidInput("Choose success or failure.", field="outcome")
        stmt = stmt.where(AuditEvent.outcome == f.outcome)
    start, end = _day(f.date_from, "date_from"), _day(f.date_to, "date_to")
    if start and end and end < start:
        raise InvalidInput("The end date is before the start date.", field="date_to")
    if start:
        stmt = stmt.where(AuditEvent.occurred_at >= start.isoformat())
    if end:
        stmt = stmt.where(AuditEvent.occurred_at < (end + timedelta(days=1)).isoformat())
    return stmt


def search(rt: Runtime, ctx: RaContext, f: AuditFilter, page: int = 1) -> AuditPage:
    """One page of the organisation's audit events matching the filter, in words."""
    with rt.db() as session:
        stmt = _query(session, ctx, f)
        total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        pages = max(1, -(-total // PAGE_SIZE))
        page = min(max(page, 1), pages)
        rows = session.scalars(
            stmt.order_by(AuditEvent.seq.desc()).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)
        )
        events = audit_display.views(session, ctx.organisation_id, rows)
        return AuditPage(events=events, page=page, pages=pages, total=total)


def export_csv(rt: Runtime, ctx: RaContext, f: AuditFilter) -> Iterator[str]:
    """The filtered events as CSV, oldest first, with formulas neutralised: the codes (action,
    actor) beside what the page shows for them (what happened, who acted)."""
    with rt.db() as session:
        rows = session.scalars(_query(session, ctx, f).order_by(AuditEvent.seq))
        events = audit_display.views(session, ctx.organisation_id, rows)
    yield audit.csv_row(CSV_HEADER)
    for e in events:
        details = json.dumps(dict(e.details), sort_keys=True, ensure_ascii=False)
        yield audit.csv_row(
            [
                e.occurred_at,
                e.action,
                e.phrase,
                e.outcome,
                e.reason,
                e.actor_ref,
                e.actor,
                e.person,
                e.card,
                details,
            ]
        )
