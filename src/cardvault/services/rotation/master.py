"""Rotating the master key online (DESIGN §4, issue 20).

1. *Begin*: the provider makes a new version and makes it current; the old one stays
   listed (``master.json``), so its blobs still open. Every instance notices within
   ``ring.RESCAN_SECONDS`` and seals under the new version from then on; the job waits
   that long before its first pass.
2. *Re-seal*: every sealed column (``sealed.COLUMNS``) is read in batches by primary key and
   each blob of an older version is opened and sealed again under the current one, with
   the same AAD, by a conditional UPDATE (``store/queries/sealed``) committed per batch; then
   the sealed key files. Passes repeat until one finds nothing left to do.
3. *Retire*: the older versions leave the description and their keys are destroyed.

A crash anywhere leaves a state the next ``cardvault keys rotate-master`` resumes: the
description still lists the older version, and the passes skip what is already re-sealed.
Begin and end are audited; progress is reported per column through ``progress``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from cardvault.domain.audit_actions import AuditAction
from cardvault.errors import InvalidInput
from cardvault.keystore.files import write_private
from cardvault.keystore.provider import unpack
from cardvault.keystore.ring import RESCAN_SECONDS, MasterKeyRing
from cardvault.services.rotation import events, sealed
from cardvault.services.system.runtime import Actor, Runtime, keystore_for
from cardvault.store.db import transaction
from cardvault.store.queries import sealed as queries

BATCH = 200
MAX_PASSES = 10


@dataclass(frozen=True, kw_only=True)
class Progress:
    """Where a pass stands in one column (or the key files): ``done`` of ``seen`` blobs
    looked at so far were re-sealed."""

    what: str
    seen: int
    resealed: int
    finished: bool


@dataclass(frozen=True, kw_only=True)
class RotationResult:
    """A master-key rotation done: the versions resealed from, the new one, the work done."""

    from_versions: tuple[int, ...]
    to_version: int
    resumed: bool
    resealed: int
    passes: int


Report = Callable[[Progress], None]


def _ring(rt: Runtime) -> MasterKeyRing:
    if not isinstance(rt.master_key, MasterKeyRing):
        raise InvalidInput("This master key cannot be rotated here (it was not loaded as a ring).")
    return rt.master_key


def versions(rt: Runtime) -> tuple[int, ...]:
    """The master key versions this service holds, oldest first (two or more: a rotation
    is under way)."""
    return _ring(rt).versions


def begin(rt: Runtime, actor: Actor) -> int:
    """Make a new version current (step 1); its number. Audited."""
    ring = _ring(rt)
    old = ring.mk_version
    keystore_for(rt.settings).begin_rotation()
    ring.refresh()
    events.record_step(
        rt,
        actor,
        AuditAction.KEY_MASTER_ROTATION_STARTED,
        {"from_version": old, "to_version": ring.mk_version},
    )
    return ring.mk_version


def rotate(
    rt: Runtime,
    actor: Actor,
    *,
    progress: Report | None = None,
    settle: float = RESCAN_SECONDS,
    just_begun: bool = False,
) -> RotationResult:
    """Begin (or resume) a rotation and see it through; see the module docstring.
    ``just_begun``: the caller ran :func:`begin` itself (to hand out shares first)."""
    ring, store = _ring(rt), keystore_for(rt.settings)
    resumed = len(ring.versions) > 1 and not just_begun
    if len(ring.versions) == 1:
        begin(rt, actor)
    older = ring.versions[:-1]
    time.sleep(settle * 2)  # every instance now seals under the new version
    total, passes = 0, 0
    while passes < MAX_PASSES:
        passes += 1
        done = _pass(rt, ring, progress or (lambda _p: None))
        total += done
        if done == 0:
            break
    store.finish_rotation()
    ring.refresh()
    result = RotationResult(
        from_versions=tuple(older),
        to_version=ring.mk_version,
        resumed=resumed,
        resealed=total,
        passes=passes,
    )
    events.record_step(
        rt,
        actor,
        AuditAction.KEY_MASTER_ROTATED,
        {
            "from_versions": list(result.from_versions),
            "to_version": result.to_version,
            "resealed": total,
            "resumed": resumed,
        },
    )
    return result


def _pass(rt: Runtime, ring: MasterKeyRing, report: Report) -> int:
    """One look at every blob; how many were re-sealed."""
    count = 0
    for column in sealed.COLUMNS:
        count += _column(rt, ring, column, report)
    count += _files(rt, ring, report)
    return count


def _column(rt: Runtime, ring: MasterKeyRing, column: sealed.SealedColumn, report: Report) -> int:
    after: str | None = None
    seen = resealed = 0
    while True:
        with transaction(rt.db) as session:
            rows = queries.batch(
                session,
                column.table,
                column.key,
                column.blob,
                column.extra,
                after=after,
                size=BATCH,
            )
            for row in rows:
                blob = bytes(getattr(row, column.blob))
                fresh = ring.reseal(blob, aad=column.aad_of(row))
                if fresh is not None and queries.replace(
                    session,
                    column.table,
                    column.key,
                    column.blob,
                    getattr(row, column.key),
                    old=blob,
                    new=fresh,
                    also=column.also(ring.mk_version) if column.also else None,
                ):
                    resealed += 1
        seen += len(rows)
        if rows:
            after = getattr(rows[-1], column.key)
        report(Progress(what=column.name, seen=seen, resealed=resealed, finished=not rows))
        if len(rows) < BATCH:
            if rows:
                report(Progress(what=column.name, seen=seen, resealed=resealed, finished=True))
            return resealed


def _files(rt: Runtime, ring: MasterKeyRing, report: Report) -> int:
    seen = resealed = 0
    for item in sealed.files(rt.data_dir, rt.settings.keys_dir):
        seen += 1
        fresh = ring.reseal(item.path.read_bytes(), aad=item.aad)
        if fresh is not None:
            write_private(item.path, fresh)
            resealed += 1
    report(Progress(what="key files", seen=seen, resealed=resealed, finished=True))
    return resealed


def pending(rt: Runtime) -> dict[str, int]:
    """How many blobs per column are still sealed under an older version (for ``status``)."""
    ring = _ring(rt)
    current, out = ring.mk_version, {}
    for column in sealed.COLUMNS:
        after, left = None, 0
        while True:
            with rt.db() as session:
                rows = queries.batch(
                    session, column.table, column.key, column.blob, (), after=after, size=1000
                )
            left += sum(1 for r in rows if unpack(bytes(getattr(r, column.blob)))[0] != current)
            if len(rows) < 1000:
                break
            after = getattr(rows[-1], column.key)
        out[column.name] = left
    out["key files"] = sum(
        1
        for f in sealed.files(rt.data_dir, rt.settings.keys_dir)
        if unpack(f.path.read_bytes())[0] != current
    )
    return out
