"""Is the database's audit trail as far along as its anchors say? (DESIGN §3.7)

``verify_all`` proves every chain whole (``audit.verify_in``) and then holds the database to
the anchors: it must reach every binding anchor and hold the anchored event there; and an
organisation that exists must have a chain. Everything is read from one snapshot of the
database, taken after the anchor files' current length was noted: an anchor is written after
its transaction commits, so every anchor read is of an event the snapshot holds.

``acknowledge_restore`` is the operator's audited "yes, we restored that backup": it appends
an event to each chain concerned and anchors its head as a restore (see
``domain.audit_anchor``), after which the chain verifies again, and a later rollback is
caught as before.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.audit_anchor import (
    Anchor,
    AnchorFindings,
    ChainRolledBack,
    Restores,
    judge,
    restore_point,
    verify_anchor,
)
from cardvault.errors import CardvaultError, Conflict, InvalidInput, NotFound
from cardvault.services.audit import trail as audit
from cardvault.services.audit.anchor import AnchorReading, UnreadableLine, anchor_sources
from cardvault.services.audit.errors import AnchorsLost
from cardvault.services.audit.heads import acknowledge_restore as anchor_as_restore
from cardvault.services.audit.signing_key import audit_public_keys
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import AuditEvent, AuditHead, Organisation

RESTORE_ACKNOWLEDGED = AuditAction.AUDIT_RESTORE_ACKNOWLEDGED
_LOOKUP_BATCH = 500
_MAX_REASON = 300


@dataclass(frozen=True, kw_only=True)
class ChainReport:
    """How one chain verified: its length, its newest anchor, and the error if it failed."""

    chain: str
    label: str
    #: the verified length of the chain in the database (None when it is broken)
    events: int | None
    #: the newest binding anchor's position (0: not anchored)
    anchored: int
    error: CardvaultError | None = None
    #: for an acknowledgement: the last event the chain shares with its binding anchors
    restore_point: int = 0

    @property
    def ok(self) -> bool:
        """Whether the chain verified."""
        return self.error is None


@dataclass(frozen=True, kw_only=True)
class VerifyReport:
    """What ``audit verify`` found: every chain, the anchors read and those skipped."""

    chains: tuple[ChainReport, ...]
    anchor_sources: tuple[str, ...]
    anchor_lines: int
    unreadable: tuple[UnreadableLine, ...]
    #: a failure of the anchors as a whole (the anchor file is gone)
    anchors_error: CardvaultError | None = None

    @property
    def ok(self) -> bool:
        """Whether the anchors could be read and every chain verified."""
        return self.anchors_error is None and all(c.ok for c in self.chains)


# -- verification -----------------------------------------------------------------------


def verify_all(
    rt: Runtime, *, org: str | None = None, anchor_files: Sequence[Path] = ()
) -> VerifyReport:
    """Verify every chain (or one organisation's) against the database and the anchors."""
    sources = anchor_sources(rt, anchor_files)
    lengths = {path: path.stat().st_size for path in sources or ()}
    with rt.db() as session:
        audit.snapshot(session)
        targets = _targets(session, org)
        reading = AnchorReading(lengths=lengths)
        only = ({chain for chain, _ in targets} or {org}) if org else None
        findings = _check_anchors(session, rt, reading, only) if sources else {}
        if org is None:
            known = {chain for chain, _ in targets}
            targets += [(chain, chain) for chain in sorted(set(findings) - known)]
        elif not targets:  # a chain known to the anchors only (its organisation is gone)?
            if org not in findings:
                raise NotFound(f"There is no organisation {org.upper()} and no audit chain {org}.")
            targets = [(org, org)]
        organisations = set(session.scalars(select(Organisation.id)))
        reports = tuple(
            _chain_report(session, rt, chain, label, findings, chain in organisations)
            for chain, label in targets
        )
        lost = None if sources else _anchors_lost(session, rt)
    return VerifyReport(
        chains=reports,
        anchor_sources=tuple(str(p) for p in lengths),
        anchor_lines=reading.lines,
        unreadable=tuple(reading.unreadable),
        anchors_error=lost,
    )


def _targets(session: Session, org: str | None) -> list[tuple[str, str]]:
    if org is None:
        return audit.chains(session)
    if org.lower() == audit.SERVICE_CHAIN:
        return [(audit.SERVICE_CHAIN, audit.SERVICE_CHAIN)]
    found = session.scalar(select(Organisation).where(Organisation.code == org.upper()))
    if found is not None:
        return [(found.id, found.code)]
    if session.get(AuditHead, org) is not None:  # a chain whose organisation is gone
        return [(org, org)]
    return []


def _check_anchors(
    session: Session, rt: Runtime, reading: AnchorReading, only: set[str] | None
) -> dict[str, AnchorFindings]:
    """Every binding anchor held against the database: two passes over the anchors, the
    first for acknowledged restores, the second looking the anchored events up in batches."""
    public = audit_public_keys(rt)
    restores = Restores()
    for anchor in _wanted(reading.anchors(), only):
        if anchor.restored_to is not None:
            verify_anchor(anchor, public)
            restores.add(anchor)
    findings: dict[str, AnchorFindings] = {}
    batches: dict[str, dict[int, set[str]]] = {}
    for anchor in _wanted(reading.anchors(), only):
        verify_anchor(anchor, public)
        if restores.supersede(anchor):
            continue
        batch = batches.setdefault(anchor.chain, {})
        batch.setdefault(anchor.seq, set()).add(anchor.hash)
        if len(batch) >= _LOOKUP_BATCH:
            _look_up(session, anchor.chain, batches.pop(anchor.chain), findings)
    for chain, batch in batches.items():
        _look_up(session, chain, batch, findings)
    return findings


def _wanted(anchors: Iterator[Anchor], only: set[str] | None) -> Iterator[Anchor]:
    return (a for a in anchors if only is None or a.chain in only)


def _look_up(
    session: Session,
    chain: str,
    batch: dict[int, set[str]],
    findings: dict[str, AnchorFindings],
) -> None:
    rows = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).where(
            AuditEvent.chain == chain, AuditEvent.seq.in_(sorted(batch))
        )
    )
    stored = {int(seq): str(hash_) for seq, hash_ in rows}
    found = findings.setdefault(chain, AnchorFindings())
    for seq, hashes in batch.items():
        for anchored in hashes:
            found.saw(seq, matches=stored.get(seq) == anchored)


def _chain_report(
    session: Session,
    rt: Runtime,
    chain: str,
    label: str,
    findings: dict[str, AnchorFindings],
    organisation: bool,
) -> ChainReport:
    found = findings.get(chain, AnchorFindings())
    try:
        events = audit.verify_in(session, rt, chain)
    except CardvaultError as exc:
        return ChainReport(chain=chain, label=label, events=None, anchored=found.newest, error=exc)
    point = restore_point(events, found.diverged_at)
    try:
        judge(label, database_seq=events, findings=found, organisation=organisation)
    except ChainRolledBack as exc:
        return ChainReport(
            chain=chain,
            label=label,
            events=events,
            anchored=found.newest,
            error=exc,
            restore_point=point,
        )
    return ChainReport(
        chain=chain, label=label, events=events, anchored=found.newest, restore_point=point
    )


def _anchors_lost(session: Session, rt: Runtime) -> AnchorsLost | None:
    signed = session.scalar(select(AuditHead.chain).where(AuditHead.seq > 0).limit(1))
    if signed is None:
        return None
    return AnchorsLost(
        f"The anchor file {rt.settings.anchor_file} does not exist, but the database holds "
        "signed chain heads: without it a rollback of the database cannot be told apart.",
        remedy="Restore the anchor file from its backup (or pass copies with --anchors). If "
        "it is lost for good, cardvault audit acknowledge-restore --all --reason TEXT starts "
        "a new one from the database as it is.",
    )


# -- acknowledging a restore -------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Acknowledgement:
    """A restore acknowledged for one chain: the heads either side and what it restored to."""

    label: str
    database_seq: int
    anchored_seq: int
    restored_to: int
    event_seq: int


def acknowledge_restore(
    rt: Runtime,
    actor: Actor,
    *,
    org: str | None,
    reason: str,
    anchor_files: Sequence[Path] = (),
) -> list[Acknowledgement]:
    """Acknowledge the restore of one chain (``org``: a code, ``service`` or a chain id) or,
    with ``org`` None, of every chain the anchors show rolled back. Refused for a chain whose
    damage a restore does not explain, and where there is nothing to acknowledge."""
    why = _reason(reason)
    report = verify_all(rt, org=org, anchor_files=anchor_files)
    _refuse_damaged(report)
    lost = report.anchors_error is not None
    due = [c for c in report.chains if not c.ok or (lost and c.events)]
    if not due:
        which = f"chain {report.chains[0].label}" if org else "every chain"
        raise Conflict(
            f"The anchors agree with the database for {which}: there is no restore to acknowledge."
        )
    return [_acknowledge(rt, actor, chain, why) for chain in due]


def _reason(reason: str) -> str:
    text = " ".join(reason.split())
    if not text or len(text) > _MAX_REASON:
        raise InvalidInput(f"Give a reason (1 to {_MAX_REASON} characters).")
    return text


def _refuse_damaged(report: VerifyReport) -> None:
    damaged = [c for c in report.chains if c.error and not isinstance(c.error, ChainRolledBack)]
    if damaged:
        names = ", ".join(f"{c.label} ({c.error.message})" for c in damaged if c.error)
        raise Conflict(
            f"A restore does not explain the damage to {names}: nothing was acknowledged.",
            remedy="Investigate with cardvault audit verify; keep the database as evidence.",
        )


def _acknowledge(rt: Runtime, actor: Actor, chain: ChainReport, reason: str) -> Acknowledgement:
    database_seq = chain.events or 0
    with transaction(rt.db) as session:
        event = audit.record(
            session,
            rt,
            actor,
            action=RESTORE_ACKNOWLEDGED,
            reason=reason,
            organisation_id=None if chain.chain == audit.SERVICE_CHAIN else chain.chain,
            details=_details(chain),
        )
        anchor_as_restore(session, chain.chain, chain.restore_point)
    return Acknowledgement(
        label=chain.label,
        database_seq=database_seq,
        anchored_seq=chain.anchored,
        restored_to=chain.restore_point,
        event_seq=event.seq,
    )


def _details(chain: ChainReport) -> dict[str, int | str]:
    out: dict[str, int | str] = {
        "database_seq": chain.events or 0,
        "anchored_seq": chain.anchored,
        "restored_to": chain.restore_point,
    }
    if isinstance(chain.error, ChainRolledBack):
        out["problem"] = chain.error.problem.value
    return out
