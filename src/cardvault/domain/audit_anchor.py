"""Audit anchors: signed chain heads kept outside the database (DESIGN §3.7).

A signed head proves a prefix of a chain, not its end: a database rolled back by hand, or
restored from an older backup, carries older heads that are still correctly signed. So every
signed head is also appended to a place the database cannot reach, the *anchor* (a file the
service only appends to, or syslog), one line per signed head, and verification compares the
database with it: the database must reach every anchored position and hold there the event
that was anchored.

An operator who restored a backup on purpose says so with a *restore* anchor: signed like a
head, it pins the chain's new head and names ``restored_to``, the last event the restored
chain shares with what was anchored before. Anchors of that chain signed before it and
beyond that event describe the abandoned history and no longer bind; anchors up to it still
do, and so does everything anchored after it.

This module is the pure part: the line format, the signed messages, the rule by which a
restore supersedes older anchors, and the verdict on one chain. Reading, writing and the
database are the caller's business.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cardvault.crypto.signing import SignatureInvalid, verify_any
from cardvault.domain.audit_chain import ChainHead, canonical_json, checkpoint_message
from cardvault.errors import IntegrityError, InvalidInput, error
from cardvault.json_types import JsonObject

ANCHOR_VERSION = 1
#: longer lines are not ours (a chain id is at most 40 characters, a line about 300 bytes)
MAX_LINE = 2048
_HASH = re.compile(r"[0-9a-f]{64}")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
_SIGNATURE_SIZE = 64


class AnchorKind(StrEnum):
    HEAD = "head"
    RESTORE = "restore"


class AnchorUnreadable(InvalidInput):
    """A line of an anchor source is not an anchor (torn by a crash, or not ours)."""

    code = "audit_anchor_unreadable"


@error
class AnchorInvalid(IntegrityError):
    """An anchor line is well formed but not signed by the service's audit key: forged."""

    code = "audit_anchor_invalid"
    chain: str
    seq: int


class RollbackProblem(StrEnum):
    BEHIND = "behind"
    DIVERGED = "diverged"
    NO_CHAIN = "no_chain"


@error
class ChainRolledBack(IntegrityError):
    """The database holds less of a chain, or another history of it, than was anchored."""

    code = "audit_rolled_back"
    problem: RollbackProblem
    database_seq: int
    anchored_seq: int
    diverged_at: int | None

    def extensions(self) -> JsonObject:
        """The attributes, and how many anchored events the database is missing."""
        return {
            "problem": self.problem.value,
            "database_seq": self.database_seq,
            "anchored_seq": self.anchored_seq,
            "missing": max(self.anchored_seq - self.database_seq, 0),
            "diverged_at": self.diverged_at,
        }


@dataclass(frozen=True, kw_only=True)
class Anchor:
    """One anchor line: a signed head, or a signed acknowledgement of a restore."""

    kind: AnchorKind
    chain: str
    seq: int
    hash: str
    signed_at: str
    signature: bytes
    #: RESTORE only: the last event the restored chain shares with the earlier anchors
    restored_to: int | None = None

    def __post_init__(self) -> None:
        if (self.kind is AnchorKind.RESTORE) != (self.restored_to is not None):
            raise ValueError("restored_to belongs to restore anchors, and they need it")

    @property
    def head(self) -> ChainHead:
        return ChainHead(chain=self.chain, seq=self.seq, hash=self.hash)

    def message(self) -> bytes:
        """The bytes the signature covers."""
        if self.restored_to is None:
            return checkpoint_message(self.head, self.signed_at)
        return restore_message(self.head, self.restored_to, self.signed_at)


def restore_message(head: ChainHead, restored_to: int, signed_at: str) -> bytes:
    """The canonical bytes the audit key signs to acknowledge a restore of ``head.chain``."""
    return canonical_json(
        {
            "type": "cardvault.audit.restore",
            "version": 1,
            "chain": head.chain,
            "seq": head.seq,
            "hash": head.hash,
            "restored_to": restored_to,
            "signed_at": signed_at,
        }
    )


def anchor_line(anchor: Anchor) -> bytes:
    """The anchor as one line of sorted compact JSON, newline-terminated."""
    content: JsonObject = {
        "v": ANCHOR_VERSION,
        "kind": anchor.kind.value,
        "chain": anchor.chain,
        "seq": anchor.seq,
        "hash": anchor.hash,
        "signed_at": anchor.signed_at,
        "signature": base64.b64encode(anchor.signature).decode("ascii"),
    }
    if anchor.restored_to is not None:
        content["restored_to"] = anchor.restored_to
    return canonical_json(content) + b"\n"


def parse_anchor_line(line: str) -> Anchor:
    """The anchor on ``line``; a syslog prefix before the JSON object is skipped.

    Raises AnchorUnreadable, saying what is wrong, for anything that is not exactly an
    anchor line as ``anchor_line`` writes it.
    """
    text = line.strip()
    if len(text) > MAX_LINE:
        raise AnchorUnreadable(f"The line is longer than {MAX_LINE} characters.")
    start = text.find("{")
    if start < 0:
        raise AnchorUnreadable("The line holds no JSON object.")
    try:
        data = json.loads(text[start:])
    except (ValueError, RecursionError) as exc:
        raise AnchorUnreadable(f"The line is not JSON ({exc}).") from None
    if not isinstance(data, dict):
        raise AnchorUnreadable("The line is not a JSON object.")
    return _anchor_from(data)


def _anchor_from(data: JsonObject) -> Anchor:
    kind = _kind(data.get("kind"))
    expected = {"v", "kind", "chain", "seq", "hash", "signed_at", "signature"}
    if kind is AnchorKind.RESTORE:
        expected.add("restored_to")
    if set(data) != expected:
        raise AnchorUnreadable(f"A {kind.value} anchor has the fields {sorted(expected)}.")
    if data["v"] != ANCHOR_VERSION:
        raise AnchorUnreadable(f"Anchor version {data['v']!r} is not {ANCHOR_VERSION}.")
    seq = _count(data["seq"], "seq", minimum=1)
    restored_to = None
    if kind is AnchorKind.RESTORE:
        restored_to = _count(data["restored_to"], "restored_to", minimum=0)
        if restored_to >= seq:
            raise AnchorUnreadable("A restore anchor's restored_to must come before its seq.")
    return Anchor(
        kind=kind,
        chain=_text(data["chain"], "chain", re.compile(r"[A-Za-z0-9_-]{1,40}")),
        seq=seq,
        hash=_text(data["hash"], "hash", _HASH),
        signed_at=_text(data["signed_at"], "signed_at", _TIME),
        signature=_signature(data["signature"]),
        restored_to=restored_to,
    )


def _kind(value: Any) -> AnchorKind:
    try:
        return AnchorKind(value)
    except ValueError:
        raise AnchorUnreadable(f"Anchor kind {value!r} is not head or restore.") from None


def _count(value: Any, name: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise AnchorUnreadable(f"{name} must be a whole number from {minimum}.")
    return value


def _text(value: Any, name: str, pattern: re.Pattern[str]) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise AnchorUnreadable(f"{name} is malformed.")
    return value


def _signature(value: Any) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
    except binascii.Error:
        raw = b""
    if len(raw) != _SIGNATURE_SIZE:
        raise AnchorUnreadable("signature must be 64 bytes in base64.")
    return raw


def verify_anchor(anchor: Anchor, public_key: bytes | tuple[bytes, ...]) -> None:
    """Raise AnchorInvalid unless the audit key signed ``anchor`` (one of them, when given
    several: the current key and those it replaced, issue 20)."""
    keys = (public_key,) if isinstance(public_key, bytes) else public_key
    try:
        verify_any(keys, anchor.message(), anchor.signature)
    except SignatureInvalid as exc:
        raise AnchorInvalid(
            f"The {anchor.kind.value} anchor of chain {anchor.chain} at event {anchor.seq} "
            "is not signed by this service's audit key: someone else wrote it.",
            chain=anchor.chain,
            seq=anchor.seq,
        ) from exc


# -- restores ---------------------------------------------------------------------------


@dataclass(kw_only=True)
class Restores:
    """The acknowledged restores read from the anchors, by chain."""

    by_chain: dict[str, list[Anchor]] = field(default_factory=dict)

    def add(self, anchor: Anchor) -> None:
        if anchor.kind is AnchorKind.RESTORE:
            self.by_chain.setdefault(anchor.chain, []).append(anchor)

    def supersede(self, anchor: Anchor) -> bool:
        """Whether a later acknowledged restore abandoned the history ``anchor`` pins.

        Times are the service's own (``signed_at``), so the rule does not depend on the order
        of lines or of anchor files: an anchor signed before a restore and beyond its
        ``restored_to`` belongs to the history the operator acknowledged as lost.
        """
        return any(
            anchor.signed_at < restore.signed_at and anchor.seq > (restore.restored_to or 0)
            for restore in self.by_chain.get(anchor.chain, ())
        )


def restore_point(database_seq: int, first_divergence: int | None) -> int:
    """The last event a restored chain shares with its anchors: its head, or the event
    before the first anchored position where the database holds another event."""
    if first_divergence is None:
        return database_seq
    return min(database_seq, first_divergence - 1)


# -- the verdict on one chain -------------------------------------------------------------


@dataclass(kw_only=True)
class AnchorFindings:
    """What a chain's binding anchors said about the database, gathered one by one."""

    count: int = 0
    newest: int = 0
    #: the lowest anchored position at which the database holds another event
    diverged_at: int | None = None

    def saw(self, seq: int, *, matches: bool) -> None:
        """One binding anchor at ``seq``; ``matches`` if the database holds that event there
        (False when it holds another, or none)."""
        self.count += 1
        self.newest = max(self.newest, seq)
        if not matches and (self.diverged_at is None or seq < self.diverged_at):
            self.diverged_at = seq


def judge(label: str, *, database_seq: int, findings: AnchorFindings, organisation: bool) -> None:
    """Raise ChainRolledBack unless the database chain (verified up to ``database_seq``)
    reaches every anchored position and holds the anchored event there.

    ``organisation``: the chain is an existing organisation's, which always has events (its
    first is the organisation's creation), anchors or not.
    """
    remedy = (
        "If a backup was restored on purpose, acknowledge it: cardvault audit "
        f"acknowledge-restore --chain {label} --reason TEXT. Otherwise the database was "
        "rolled back: keep a copy of it and of the anchors as evidence."
    )
    diverged = findings.diverged_at if _within(findings.diverged_at, database_seq) else None
    if organisation and database_seq == 0:
        anchored = f"; its anchors reach event {findings.newest}" if findings.newest else ""
        raise _rolled_back(
            f"chain {label}: the organisation exists but its audit chain is gone (no head, no "
            f"events; every organisation's chain begins with its creation){anchored}",
            RollbackProblem.NO_CHAIN,
            database_seq,
            findings,
            None,
            remedy,
        )
    if findings.newest > database_seq:
        missing = findings.newest - database_seq
        where = (
            f"database head at event {database_seq}"
            if database_seq
            else "no events in the database"
        )
        also = f"; and event {diverged} differs from the one anchored there" if diverged else ""
        raise _rolled_back(
            f"chain {label}: {where}, anchored head at event {findings.newest}: "
            f"{_events(missing)} missing{also} — a rollback or a restore",
            RollbackProblem.BEHIND,
            database_seq,
            findings,
            diverged,
            remedy,
        )
    if diverged is not None:
        raise _rolled_back(
            f"chain {label}: event {diverged} in the database is not the event anchored at "
            f"that position: the chain was rolled back to before event {diverged} and "
            "written again — a rollback or a restore",
            RollbackProblem.DIVERGED,
            database_seq,
            findings,
            diverged,
            remedy,
        )


def _within(seq: int | None, database_seq: int) -> bool:
    return seq is not None and seq <= database_seq


def _events(n: int) -> str:
    return "1 event" if n == 1 else f"{n} events"


def _rolled_back(
    detail: str,
    problem: RollbackProblem,
    database_seq: int,
    findings: AnchorFindings,
    diverged: int | None,
    remedy: str,
) -> ChainRolledBack:
    return ChainRolledBack(
        f"The audit chain was rolled back: {detail}.",
        problem=problem,
        database_seq=database_seq,
        anchored_seq=findings.newest,
        diverged_at=diverged,
        remedy=remedy,
    )
