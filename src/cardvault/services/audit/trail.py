"""The audit trail (DESIGN §3.7): one hash chain per organisation, written fail-closed.

``record`` appends to the chain inside the caller's transaction: if the event cannot be
written, the transaction — and with it the operation — does not commit. The chain's head
row is locked for the transaction by its first append, and written and signed with the
service's Ed25519 audit key once, as the transaction commits; the signed head is then
anchored outside the database (``audit_heads``), so that neither a truncated chain nor an
older one restored in its place can pass for the whole.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from cardvault.crypto import signing
from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.audit_chain import (
    AuditRecord,
    ChainBroken,
    ChainHead,
    ChainProblem,
    checkpoint_message,
    next_record,
    verify_chain,
)
from cardvault.json_types import JsonInput
from cardvault.services.audit.errors import (
    AuditUnavailable,
    HeadSignatureInvalid,
    audit_write_failed,
)
from cardvault.services.audit.heads import locked_head, moved
from cardvault.services.audit.signing_key import audit_public_keys
from cardvault.services.system import metrics
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import snapshot_options
from cardvault.store.models import AuditEvent, AuditHead, Organisation, table_of
from cardvault.store.types import new_id

__all__ = ["AuditUnavailable", "HeadSignatureInvalid"]

SERVICE_CHAIN = "service"
# Built once: an append is on every card operation's path, and SQLAlchemy then reuses the
# compiled statement instead of rebuilding it per call.
_INSERT_EVENT = insert(table_of(AuditEvent))
_RECORD_FIELDS = tuple(f.name for f in fields(AuditRecord))
EXPORT_FIELDS = (
    "seq",
    "occurred_at",
    "action",
    "outcome",
    "reason",
    "actor",
    "person_id",
    "card_id",
    "organisation_id",
    "request_id",
    "details",
    "id",
    "prev_hash",
    "hash",
)


def iso(ts: datetime) -> str:
    """A time as the audit trail writes it: UTC, microseconds, ``Z``."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def whence(actor: Actor) -> dict[str, JsonInput]:
    """The ``client_address`` detail of an event a request caused (DESIGN §3.7: every use
    with where it came from), so that the RA sees the address a refused sign-in came from;
    nothing for an act with no address (the CLI, a scheduled job)."""
    return {"client_address": actor.client_address} if actor.client_address else {}


def record(
    session: Session,
    rt: Runtime,
    actor: Actor,
    *,
    action: AuditAction,
    outcome: str = "success",
    reason: str | None = None,
    organisation_id: str | None = None,
    person_id: str | None = None,
    card_id: str | None = None,
    details: Mapping[str, JsonInput] | None = None,
) -> AuditRecord:
    """Append one event to its organisation's chain in the caller's transaction.

    Fails closed: any failure to write the event raises, and the caller's transaction (and
    with it the operation) does not commit.
    """
    session.flush()  # the caller's own changes raise their own errors, not the audit's
    chain = organisation_id or SERVICE_CHAIN
    try:
        head = locked_head(session, chain)
        rec = next_record(
            previous=head if head.seq else None,
            chain=chain,
            event_id=new_id(),
            occurred_at=rt.clock(),
            action=action,
            outcome=outcome,
            reason=reason,
            actor=actor.ref,
            person_id=person_id,
            card_id=card_id,
            organisation_id=organisation_id,
            request_id=actor.request_id,
            details=details or {},
        )
        # a Core statement, not an ORM object: an append is on every card operation's path
        session.connection().execute(_INSERT_EVENT, _columns(rec))
    except SQLAlchemyError as exc:
        raise audit_write_failed(exc, "The audit event") from exc
    moved(session, rt, ChainHead(chain=chain, seq=rec.seq, hash=rec.hash))
    metrics.audited(session, rt, action, outcome, details)  # counted once it commits
    return rec


class CardRef(Protocol):
    """The card an event is about: a row or a view, anything with these three ids."""

    @property
    def id(self) -> str:
        """The card's id."""
        ...

    @property
    def person_id(self) -> str:
        """The holder's person id."""
        ...

    @property
    def organisation_id(self) -> str:
        """The organisation the card belongs to (its audit chain)."""
        ...


def record_for_card(
    session: Session,
    rt: Runtime,
    actor: Actor,
    card: CardRef,
    *,
    action: AuditAction,
    outcome: str = "success",
    reason: str | None = None,
    organisation_id: str | None = None,
    details: Mapping[str, JsonInput] | None = None,
) -> AuditRecord:
    """``record`` for an event about one card: its holder and the card go with it, on the
    chain of the card's organisation unless the event happened in another one (a card
    used in an organisation its holder also belongs to, DESIGN §3.6)."""
    return record(
        session,
        rt,
        actor,
        action=action,
        outcome=outcome,
        reason=reason,
        organisation_id=organisation_id or card.organisation_id,
        person_id=card.person_id,
        card_id=card.id,
        details=details,
    )


def _columns(rec: AuditRecord) -> dict[str, object]:
    # not ``asdict``: it deep-copies the details, once per event on every card operation
    out = {name: getattr(rec, name) for name in _RECORD_FIELDS}
    out["details"] = dict(rec.details)
    return out


def _record(row: AuditEvent) -> AuditRecord:
    """The stored event as the chain core reads it: the columns are the record's fields."""
    return AuditRecord(**{name: getattr(row, name) for name in _RECORD_FIELDS})


def chains(session: Session) -> list[tuple[str, str]]:
    """(chain, label) for every chain: the service's own and one per organisation."""
    out = [(SERVICE_CHAIN, SERVICE_CHAIN)]
    for org in session.scalars(select(Organisation).order_by(Organisation.code)):
        out.append((org.id, org.code))
    heads = set(session.scalars(select(AuditHead.chain)))
    known = {c for c, _ in out}
    out.extend((c, c) for c in sorted(heads - known))
    return out


def verify(rt: Runtime, chain: str) -> int:
    """Verify one chain end to end; returns its length, or raises what is wrong first.

    This proves the chain is whole up to its signed head; whether that head is as far as the
    chain ever reached is for the anchors to say (``audit_rollback``).
    """
    with rt.db() as session:
        snapshot(session)
        return verify_in(session, rt, chain)


def verify_in(session: Session, rt: Runtime, chain: str) -> int:
    """``verify`` inside the caller's session: one snapshot for several chains."""
    head_row = session.get(AuditHead, chain)
    head = ChainHead(chain=chain, seq=head_row.seq, hash=head_row.hash) if head_row else None
    if head_row is not None and head_row.seq:
        _check_head_signature(rt, head_row)
    rows = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.chain == chain)
        .order_by(AuditEvent.seq)
        .execution_options(yield_per=500)
    )
    try:
        reached = verify_chain((_record(r) for r in rows), head=head, chain=chain)
    finally:
        rows.close()  # a broken chain stops the stream early: free its server-side cursor
    signed = head.seq if head else 0
    if reached.seq != signed:
        _beyond_head(session, chain, signed)
    return signed


def snapshot(session: Session) -> None:
    """Read everything that follows in ``session`` from one snapshot of the database.

    Verification runs beside the service: without a snapshot it could see events committed
    after it read a chain's head, and take them for forgeries; and on SQLite it would keep
    writers out for as long as it runs.
    """
    session.connection(execution_options=snapshot_options(session.get_bind().engine))


def _beyond_head(session: Session, chain: str, signed: int) -> None:
    """Every transaction signs the head it moved before it commits: events past the signed
    head were forged, or the head row itself was deleted to hide a truncation."""
    first = session.scalar(
        select(AuditEvent.id)
        .where(AuditEvent.chain == chain, AuditEvent.seq > signed)
        .order_by(AuditEvent.seq)
        .limit(1)
    )
    if signed == 0:
        raise ChainBroken(
            f"The audit chain is broken: chain {chain} has events (from event 1, id {first}) "
            "but no signed head, so its end cannot be proven: the head was deleted, perhaps "
            "to hide a truncation.",
            problem=ChainProblem.TRUNCATED,
            seq=1,
            event_id=first,
        )
    raise ChainBroken(
        f"The audit chain is broken: event {signed + 1} (id {first}) and any after it are "
        f"not covered by the signed head of chain {chain}, which ends at event {signed}: "
        "they were added outside cardvault.",
        problem=ChainProblem.INSERTED,
        seq=signed + 1,
        event_id=first,
    )


def _check_head_signature(rt: Runtime, head: AuditHead) -> None:
    if head.signature is None:
        raise HeadSignatureInvalid(
            f"The head of audit chain {head.chain} (event {head.seq}) is not signed: it was "
            "written by something other than cardvault, which signs every head it commits."
        )
    message = checkpoint_message(
        ChainHead(chain=head.chain, seq=head.seq, hash=head.hash), head.signed_at or ""
    )
    try:
        signing.verify_any(audit_public_keys(rt), message, head.signature)
    except Exception as exc:
        raise HeadSignatureInvalid(
            f"The head of audit chain {head.chain} (event {head.seq}) is not signed by this "
            "service's audit key: the chain end was rewritten."
        ) from exc


def export(rt: Runtime, chain: str, fmt: str) -> Iterator[str]:
    """Lines of JSON or CSV for one chain, in order, streamed."""
    with rt.db() as session:
        rows = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.chain == chain)
            .order_by(AuditEvent.seq)
            .execution_options(yield_per=500)
        )
        if fmt == "jsonl":
            for row in rows:
                yield json.dumps(_columns(_record(row)), sort_keys=True, ensure_ascii=False) + "\n"
            return
        yield _csv_line(EXPORT_FIELDS)
        for row in rows:
            data = _columns(_record(row))
            data["details"] = json.dumps(data["details"], sort_keys=True, ensure_ascii=False)
            yield _csv_line([_csv_safe(data[f]) for f in EXPORT_FIELDS])


def _csv_line(values: Any) -> str:
    # The writer quotes a cell only if it holds a character of its line terminator: with "\n"
    # alone a bare CR stays unquoted and a reader splits the row there. Write with RFC 4180's
    # CRLF so CR and LF are both quoted, then end the line with "\n" as the export always has.
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow(values)
    return buf.getvalue()[:-2] + "\n"


def _csv_safe(value: Any) -> Any:
    """Neutralise spreadsheet formulas (CSV injection) in exported text."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def csv_row(values: Any) -> str:
    """One CSV line with spreadsheet formulas neutralised (for filtered exports)."""
    return _csv_line([_csv_safe(v) for v in values])
