"""The pure core of the audit hash chain (DESIGN §3.7).

Every audit event belongs to one chain (an organisation's, or the service's own) and has a
sequence number in it. Its ``hash`` is SHA-256 over its canonical form, which includes the
previous event's hash, so changing, removing, inserting or reordering an event breaks every
link after it. Cutting the chain short (or rewriting it from some point on) leaves a valid-
looking chain, which is why the head (seq, hash) is signed periodically with the service's
audit key: a signed head pins how far the chain reached and what it looked like there.

This module builds records and verifies a stream of them; storing them and signing heads are
the caller's business.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NoReturn

from cardvault.crypto.signing import SignatureInvalid, verify_ed25519
from cardvault.errors import IntegrityError, InvalidInput, error
from cardvault.json_types import JsonInput, JsonObject, JsonValue

GENESIS = "0" * 64
#: how deep ``details`` may nest; audit details are flat facts, not documents
_MAX_DETAILS_DEPTH = 4


class ChainProblem(StrEnum):
    ALTERED = "altered"
    INSERTED = "inserted"
    DELETED = "deleted"
    REORDERED = "reordered"
    TRUNCATED = "truncated"
    WRONG_CHAIN = "wrong_chain"


@error
class ChainBroken(IntegrityError):
    """The audit chain is not what was written. ``seq`` is the first event that is wrong."""

    code = "audit_chain_broken"
    problem: ChainProblem
    seq: int
    event_id: str | None


@error
class CheckpointInvalid(IntegrityError):
    """A signed chain head does not verify under the service's audit key."""

    code = "audit_checkpoint_invalid"
    chain: str
    seq: int


class AuditDetailsInvalid(InvalidInput):
    code = "audit_details_invalid"


@dataclass(frozen=True, kw_only=True)
class AuditRecord:
    """One stored audit event. Times are UTC ISO-8601 with microseconds and a 'Z'."""

    id: str
    chain: str
    seq: int
    occurred_at: str
    action: str
    outcome: str
    reason: str | None
    actor: str | None
    person_id: str | None
    card_id: str | None
    organisation_id: str | None
    request_id: str | None
    details: Mapping[str, JsonValue]
    prev_hash: str
    hash: str


@dataclass(frozen=True, kw_only=True)
class ChainHead:
    """How far a chain reached: the last event's seq and hash (seq 0 and GENESIS when empty)."""

    chain: str
    seq: int
    hash: str

    def __post_init__(self) -> None:
        if self.seq < 0 or (self.seq == 0 and self.hash != GENESIS):
            raise ValueError("an empty chain's head is seq 0 with the GENESIS hash")


_HASHED_FIELDS = tuple(f.name for f in fields(AuditRecord) if f.name != "hash")


def canonical_bytes(record: AuditRecord) -> bytes:
    """Sorted-key compact JSON in UTF-8 of every field except ``hash``.

    Details hold only strings, integers, booleans, null, lists and string-keyed objects (no
    floats), so for our records this is also the RFC 8785 canonical form.
    """
    content = {name: getattr(record, name) for name in _HASHED_FIELDS}
    content["details"] = dict(record.details)
    return canonical_json(content)


def compute_hash(record: AuditRecord) -> str:
    return hashlib.sha256(canonical_bytes(record)).hexdigest()


def format_timestamp(moment: datetime) -> str:
    """'2024-05-01T09:30:00.000000Z': fixed width, so text order is time order."""
    if moment.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def next_record(
    *,
    previous: AuditRecord | ChainHead | None,
    chain: str,
    event_id: str,
    occurred_at: datetime,
    action: str,
    outcome: str,
    reason: str | None = None,
    actor: str | None = None,
    person_id: str | None = None,
    card_id: str | None = None,
    organisation_id: str | None = None,
    request_id: str | None = None,
    details: Mapping[str, JsonInput] | None = None,
) -> AuditRecord:
    """The event that follows ``previous``: the last event, or just the chain's head row
    (seq and hash are all it takes); None for the first event of ``chain``."""
    if previous is not None and previous.chain != chain:
        raise ValueError(f"the previous event belongs to chain {previous.chain!r}, not {chain!r}")
    if not (event_id and action and outcome):
        raise AuditDetailsInvalid("An audit event needs an id, an action and an outcome.")
    record = AuditRecord(
        id=event_id,
        chain=chain,
        seq=previous.seq + 1 if previous else 1,
        occurred_at=format_timestamp(occurred_at),
        action=action,
        outcome=outcome,
        reason=reason,
        actor=actor,
        person_id=person_id,
        card_id=card_id,
        organisation_id=organisation_id,
        request_id=request_id,
        details=_checked_details(details or {}),
        prev_hash=previous.hash if previous else GENESIS,
        hash="",
    )
    return replace(record, hash=compute_hash(record))


def head_of(record: AuditRecord) -> ChainHead:
    return ChainHead(chain=record.chain, seq=record.seq, hash=record.hash)


# -- verification ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Position:
    """Where verification stands: the last good event, and what must come next."""

    chain: str
    seq: int = 0
    hash: str = GENESIS
    event_id: str | None = None

    @property
    def expected(self) -> int:
        return self.seq + 1


def verify_chain(
    records: Iterable[AuditRecord], *, head: ChainHead | None, chain: str
) -> ChainHead:
    """Raise ChainBroken at the first event that is not as written; return the verified head.

    ``records`` are read once, in stored seq order, looking one event ahead, so a chain of any
    length can be streamed from the database. ``head`` is a signed checkpoint (verify its
    signature first): without one, losing the newest events cannot be detected.
    """
    if head is not None and head.chain != chain:
        raise ChainBroken(
            f"The signed head belongs to chain {head.chain!r}, not {chain!r}.",
            problem=ChainProblem.WRONG_CHAIN,
            seq=head.seq,
            event_id=None,
        )
    position = _Position(chain=chain)
    rows = iter(records)
    current = next(rows, None)
    while current is not None:
        following = next(rows, None)
        _check_event(position, current, following)
        if head is not None and current.seq == head.seq:
            _check_head(head, current)
        position = replace(position, seq=current.seq, hash=current.hash, event_id=current.id)
        current = following
    _check_end(position, head)
    return ChainHead(chain=chain, seq=position.seq, hash=position.hash)


def _check_event(at: _Position, event: AuditRecord, following: AuditRecord | None) -> None:
    expected = at.expected
    if event.chain != at.chain:
        raise _broken(
            ChainProblem.WRONG_CHAIN,
            expected,
            event.id,
            f"event {expected} (id {event.id}) belongs to chain {event.chain!r}, not {at.chain!r}",
        )
    if event.seq < expected:
        raise _broken(
            ChainProblem.INSERTED,
            expected,
            event.id,
            f"an extra event (id {event.id}, numbered {event.seq}) was inserted "
            f"after event {expected - 1}",
        )
    if event.seq > expected:
        _missing_here(at, event, following)
    if _hash_as(event, event.seq) != event.hash:
        _content_mismatch(at, event, following)
    if event.prev_hash != at.hash:
        _link_mismatch(at, event)


def _missing_here(at: _Position, event: AuditRecord, following: AuditRecord | None) -> NoReturn:
    expected = at.expected
    if following is not None and following.seq < event.seq:
        raise _broken(
            ChainProblem.REORDERED,
            expected,
            event.id,
            f"event {expected} is out of order: event {event.seq} (id {event.id}) comes before it",
        )
    raise _broken(
        ChainProblem.DELETED,
        expected,
        event.id,
        f"event {expected} was deleted: after {_describe_previous(at)} "
        f"comes event {event.seq} (id {event.id})",
    )


def _content_mismatch(at: _Position, event: AuditRecord, following: AuditRecord | None) -> NoReturn:
    """The event's hash does not match its content; say why, if a renumbering explains it."""
    expected = at.expected
    if _hash_as(event, expected + 1) == event.hash:
        if following is not None and _hash_as(following, expected) == following.hash:
            raise _broken(
                ChainProblem.REORDERED,
                expected,
                event.id,
                f"events {expected} and {expected + 1} were swapped "
                f"(id {event.id} was event {expected + 1})",
            )
        raise _broken(
            ChainProblem.DELETED,
            expected,
            event.id,
            f"event {expected} was deleted and later events renumbered "
            f"(id {event.id} was event {expected + 1})",
        )
    if at.event_id is not None and _hash_as(event, expected - 1) == event.hash:
        raise _broken(
            ChainProblem.INSERTED,
            at.seq,
            at.event_id,
            f"event {at.seq} (id {at.event_id}) was inserted and later events renumbered",
        )
    raise _broken(
        ChainProblem.ALTERED,
        expected,
        event.id,
        f"event {expected} (id {event.id}) was altered: its hash does not match its content",
    )


def _link_mismatch(at: _Position, event: AuditRecord) -> NoReturn:
    """The event is intact but does not follow the one before: that one was rewritten."""
    if at.event_id is None:
        raise _broken(
            ChainProblem.ALTERED,
            event.seq,
            event.id,
            f"event {event.seq} (id {event.id}) was altered: it does not link to the start "
            "of the chain",
        )
    raise _broken(
        ChainProblem.ALTERED,
        at.seq,
        at.event_id,
        f"event {at.seq} (id {at.event_id}) was altered and its hash recomputed: "
        f"event {event.seq} (id {event.id}) still links to the original",
    )


def _check_head(head: ChainHead, event: AuditRecord) -> None:
    if not hmac.compare_digest(head.hash, event.hash):
        raise _broken(
            ChainProblem.TRUNCATED,
            head.seq,
            event.id,
            f"event {head.seq} (id {event.id}) does not match the signed chain head: the "
            "chain was cut back and rewritten after the head was signed",
        )


def _check_end(at: _Position, head: ChainHead | None) -> None:
    if head is None or head.seq <= at.seq:
        return
    ends = f"ends at event {at.seq}" if at.seq else "is empty"
    raise _broken(
        ChainProblem.TRUNCATED,
        at.expected,
        None,
        f"the chain {ends}, but the signed head says it reached event {head.seq}: "
        f"events {at.expected} to {head.seq} are missing",
    )


def _broken(problem: ChainProblem, seq: int, event_id: str | None, detail: str) -> ChainBroken:
    return ChainBroken(
        f"The audit chain is broken: {detail}.", problem=problem, seq=seq, event_id=event_id
    )


def _describe_previous(at: _Position) -> str:
    return f"event {at.seq}" if at.seq else "the start of the chain"


def _hash_as(event: AuditRecord, seq: int) -> str | None:
    """The event's hash had it been numbered ``seq``; None when its content cannot be hashed."""
    try:
        return compute_hash(replace(event, seq=seq))
    except (TypeError, ValueError):  # UnicodeEncodeError is a ValueError
        return None


# -- checkpoints -------------------------------------------------------------------------


def checkpoint_message(head: ChainHead, signed_at: str) -> bytes:
    """The canonical bytes the service signs with its Ed25519 audit key to pin ``head``."""
    return canonical_json(
        {
            "type": "cardvault.audit.checkpoint",
            "version": 1,
            "chain": head.chain,
            "seq": head.seq,
            "hash": head.hash,
            "signed_at": signed_at,
        }
    )


def verify_checkpoint(
    head: ChainHead, *, signed_at: str, signature: bytes, public_key: bytes
) -> None:
    """Raise CheckpointInvalid unless ``signature`` pins ``head`` under the audit key."""
    try:
        verify_ed25519(public_key, checkpoint_message(head, signed_at), signature)
    except SignatureInvalid as exc:
        raise CheckpointInvalid(
            f"The signed head of chain {head.chain!r} at event {head.seq} does not verify "
            "under the audit key.",
            chain=head.chain,
            seq=head.seq,
        ) from exc


# -- internals ---------------------------------------------------------------------------


def canonical_json(value: Any) -> bytes:
    """Sorted-key compact JSON in UTF-8: what the audit key signs and the chain hashes."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _checked_details(details: Mapping[str, JsonInput]) -> JsonObject:
    """A deep copy of ``details``, refused unless it is plain JSON the chain can hash stably."""
    _check_value(details, depth=0)
    copied: JsonObject = json.loads(canonical_json(details))
    return copied


def _check_value(value: Any, *, depth: int) -> None:
    if depth > _MAX_DETAILS_DEPTH:
        raise AuditDetailsInvalid("Audit details nest too deeply.")
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise AuditDetailsInvalid("Audit details must have string keys.")
            _check_value(item, depth=depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_value(item, depth=depth + 1)
    elif isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise AuditDetailsInvalid("Audit details must be valid Unicode text.") from exc
    elif value is not None and not isinstance(value, bool | int):
        raise AuditDetailsInvalid(
            f"Audit details may hold text, whole numbers, booleans and null, "
            f"not {type(value).__name__}."
        )
