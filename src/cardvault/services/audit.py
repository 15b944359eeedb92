"""The audit trail (DESIGN §3.7): one hash chain per organisation, written fail-closed.

``record`` appends to the chain inside the caller's transaction: if the event cannot be
written, the transaction — and with it the operation — does not commit. Appends to one
chain are serialised by locking its head row (SELECT … FOR UPDATE on PostgreSQL; SQLite's
BEGIN IMMEDIATE serialises all writers). The head is signed with the service's Ed25519
audit key on every append, so a truncated chain cannot be given a matching head.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError as DbIntegrityError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from cardvault.crypto import signing
from cardvault.domain.audit_chain import (
    GENESIS,
    AuditRecord,
    ChainBroken,
    ChainHead,
    ChainProblem,
    checkpoint_message,
    next_record,
    verify_chain,
)
from cardvault.errors import IntegrityError, Unavailable
from cardvault.services.audit_key import audit_private_key, audit_public_key
from cardvault.services.runtime import Actor, Runtime
from cardvault.store.models import AuditEvent, AuditHead, Organisation, table_of
from cardvault.store.types import new_id

SERVICE_CHAIN = "service"
_HEADS = "cardvault.audit.heads"
# Built once with bound parameters: an append is on every card operation's path, and
# SQLAlchemy then reuses the compiled statements instead of rebuilding them per call.
_EVENTS = table_of(AuditEvent)
_HEAD_TABLE = table_of(AuditHead)
_INSERT_EVENT = insert(_EVENTS)
_INSERT_HEAD = insert(_HEAD_TABLE)
_LOCK_HEAD = (
    select(_HEAD_TABLE.c.seq, _HEAD_TABLE.c.hash)
    .where(_HEAD_TABLE.c.chain == bindparam("head_chain"))
    .with_for_update()
)
_UPDATE_HEAD = update(_HEAD_TABLE).where(_HEAD_TABLE.c.chain == bindparam("head_chain"))
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


class HeadSignatureInvalid(IntegrityError):
    code = "audit_head_signature"


class AuditUnavailable(Unavailable):
    code = "audit_unavailable"


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record(
    session: Session,
    rt: Runtime,
    actor: Actor,
    *,
    action: str,
    outcome: str = "success",
    reason: str | None = None,
    organisation_id: str | None = None,
    person_id: str | None = None,
    card_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditRecord:
    """Append one event to its organisation's chain in the caller's transaction.

    Fails closed: any failure to write the event raises, and the caller's transaction (and
    with it the operation) does not commit.
    """
    key = _signing_key(rt)
    session.flush()  # the caller's own changes raise their own errors, not the audit's
    try:
        return _append(
            session,
            rt,
            actor,
            key,
            action=action,
            outcome=outcome,
            reason=reason,
            organisation_id=organisation_id,
            person_id=person_id,
            card_id=card_id,
            details=details,
        )
    except SQLAlchemyError as exc:
        raise AuditUnavailable(
            "The audit event could not be written, so nothing was done.",
            remedy="Check the database; the operation can be retried once it is healthy.",
        ) from exc


def _signing_key(rt: Runtime) -> signing.AuditKey:
    try:
        return audit_private_key(rt)
    except IntegrityError as exc:
        raise AuditUnavailable(
            f"The audit key in {rt.settings.keys_dir} does not open under this data "
            "directory's master key, so no audit event can be written and nothing was done.",
            remedy="Restore the data directory from a backup.",
        ) from exc


def _append(
    session: Session,
    rt: Runtime,
    actor: Actor,
    key: signing.AuditKey,
    *,
    action: str,
    outcome: str,
    reason: str | None,
    organisation_id: str | None,
    person_id: str | None,
    card_id: str | None,
    details: dict[str, Any] | None,
) -> AuditRecord:
    chain = organisation_id or SERVICE_CHAIN
    head = _locked_head(session, chain)
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
    # Core statements, not ORM objects: an append is on every card operation's path
    new_head = ChainHead(chain=chain, seq=rec.seq, hash=rec.hash)
    conn = session.connection()
    conn.execute(_INSERT_EVENT, _columns(rec))
    conn.execute(
        _UPDATE_HEAD,
        {
            "head_chain": chain,
            "seq": rec.seq,
            "hash": rec.hash,
            "signed_at": rec.occurred_at,
            "signature": signing.sign_ed25519(key, checkpoint_message(new_head, rec.occurred_at)),
        },
    )
    _remember_head(session, new_head)
    return rec


def _locked_head(session: Session, chain: str) -> ChainHead:
    """The chain's head, locked for the rest of the transaction.

    Once read (and locked) in a transaction, the head is remembered for that transaction:
    the lock keeps other writers out, so later appends in it need not read it again. The
    memo is keyed by the innermost transaction, so a savepoint that ends (committed or rolled
    back) makes the next append read the row again.
    """
    remembered = session.info.get(_HEADS, {}).get(chain)
    if remembered is not None and remembered[0] is _innermost(session):
        return cast(ChainHead, remembered[1])
    conn = session.connection()
    row = conn.execute(_LOCK_HEAD, {"head_chain": chain}).one_or_none()
    if row is None:
        _create_head(session, chain)
        row = conn.execute(_LOCK_HEAD, {"head_chain": chain}).one()
    head = ChainHead(chain=chain, seq=row.seq, hash=row.hash)
    _remember_head(session, head)
    return head


def _create_head(session: Session, chain: str) -> None:
    """A new chain's head row. Two first events of one chain may race to create it: the
    loser's insert fails inside a savepoint and it then waits on the winner's row lock."""
    try:
        with session.begin_nested():
            session.connection().execute(_INSERT_HEAD, {"chain": chain, "seq": 0, "hash": GENESIS})
    except DbIntegrityError:
        pass


def _remember_head(session: Session, head: ChainHead) -> None:
    session.info.setdefault(_HEADS, {})[head.chain] = (_innermost(session), head)


def _innermost(session: Session) -> object:
    """The transaction a remembered head belongs to: the savepoint if one is open."""
    return session.get_nested_transaction() or session.get_transaction()


def _columns(rec: AuditRecord) -> dict[str, Any]:
    out = asdict(rec)
    out["details"] = dict(rec.details)
    return out


def _record(row: AuditEvent) -> AuditRecord:
    return AuditRecord(
        id=row.id,
        chain=row.chain,
        seq=row.seq,
        occurred_at=row.occurred_at,
        action=row.action,
        outcome=row.outcome,
        reason=row.reason,
        actor=row.actor,
        person_id=row.person_id,
        card_id=row.card_id,
        organisation_id=row.organisation_id,
        request_id=row.request_id,
        details=row.details,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


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
    """Verify one chain end to end; returns its length, or raises what is wrong first."""
    with rt.db() as session:
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
        reached = verify_chain((_record(r) for r in rows), head=head, chain=chain)
        signed = head.seq if head else 0
        if reached.seq != signed:
            _beyond_head(session, chain, signed)
        return signed


def _beyond_head(session: Session, chain: str, signed: int) -> None:
    """Every append signs the head in the same transaction: events past it were forged,
    or the head row itself was deleted to hide a truncation."""
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
    message = checkpoint_message(
        ChainHead(chain=head.chain, seq=head.seq, hash=head.hash), head.signed_at or ""
    )
    try:
        signing.verify_ed25519(audit_public_key(rt), message, head.signature or b"")
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
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(values)
    return buf.getvalue()


def _csv_safe(value: Any) -> Any:
    """Neutralise spreadsheet formulas (CSV injection) in exported text."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def csv_row(values: Any) -> str:
    """One CSV line with spreadsheet formulas neutralised (for filtered exports)."""
    return _csv_line([_csv_safe(v) for v in values])
