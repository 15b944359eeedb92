"""Appending to an audit chain: the head is read once per transaction and kept exact.

``audit.record`` remembers the locked head for the rest of a transaction; these tests show
that the chain stays whole when a transaction appends several events, when a savepoint with
events in it is rolled back or committed, and when many transactions append at once.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardvault.services.audit import rollback as audit_rollback
from cardvault.services.audit import trail as audit
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import AuditEvent, AuditHead


def _record(session: object, rt: Runtime, actor: Actor, action: str) -> None:
    audit.record(session, rt, actor, action=action)  # type: ignore[arg-type]


class _Dropped(Exception):
    pass


def _in_dropped_savepoint(s: Session, work: Callable[[], object]) -> None:
    """Run ``work`` in a savepoint that is then rolled back."""
    try:
        with s.begin_nested():
            work()
            raise _Dropped
    except _Dropped:
        pass


def _actions(rt: Runtime) -> list[tuple[int, str]]:
    with rt.db() as s:
        rows = s.execute(
            select(AuditEvent.seq, AuditEvent.action)
            .where(AuditEvent.chain == audit.SERVICE_CHAIN)
            .order_by(AuditEvent.seq)
        )
        return [(int(seq), str(action)) for seq, action in rows]


def test_savepoints_rolled_back_or_kept_leave_a_whole_chain(rt: Runtime, operator: Actor) -> None:
    start = len(_actions(rt))
    with transaction(rt.db) as s:
        _record(s, rt, operator, "test.first")
        _record(s, rt, operator, "test.second")
        _in_dropped_savepoint(s, lambda: _record(s, rt, operator, "test.dropped"))
        _record(s, rt, operator, "test.third")
        with s.begin_nested():
            _record(s, rt, operator, "test.in-savepoint")
        _record(s, rt, operator, "test.last")

    events = _actions(rt)[start:]
    assert [a for _, a in events] == [
        "test.first",
        "test.second",
        "test.third",
        "test.in-savepoint",
        "test.last",
    ]
    assert [seq for seq, _ in events] == list(range(start + 1, start + 6))
    assert audit.verify(rt, audit.SERVICE_CHAIN) == start + 5
    with rt.db() as s:
        assert s.scalar(select(AuditHead.seq).where(AuditHead.chain == audit.SERVICE_CHAIN)) == (
            start + 5
        )


def test_a_failed_transaction_leaves_no_trace_in_the_chain(rt: Runtime, operator: Actor) -> None:
    start = len(_actions(rt))
    try:
        with transaction(rt.db) as s:
            _record(s, rt, operator, "test.rolled-back")
            _record(s, rt, operator, "test.rolled-back-too")
            raise RuntimeError("the operation failed")
    except RuntimeError:
        pass
    with transaction(rt.db) as s:
        _record(s, rt, operator, "test.after")
    assert [a for _, a in _actions(rt)[start:]] == ["test.after"]
    assert audit.verify(rt, audit.SERVICE_CHAIN) == start + 1


def test_concurrent_transactions_append_without_gaps(rt: Runtime, operator: Actor) -> None:
    start = len(_actions(rt))

    def work(worker: int) -> None:
        for n in range(5):
            with transaction(rt.db) as s:
                for k in range(3):
                    _record(s, rt, operator, f"test.w{worker}.{n}.{k}")

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(work, range(6)))

    events = _actions(rt)[start:]
    assert len(events) == 6 * 5 * 3
    assert [seq for seq, _ in events] == list(range(start + 1, start + 91))
    # each transaction's three events are consecutive: the head lock serialised them
    for i in range(0, len(events), 3):
        prefixes = {a.rsplit(".", 1)[0] for _, a in events[i : i + 3]}
        assert len(prefixes) == 1, events[i : i + 3]
    assert audit.verify(rt, audit.SERVICE_CHAIN) == start + 90


def test_a_chain_begun_in_a_rolled_back_savepoint_leaves_no_head(
    rt: Runtime, operator: Actor
) -> None:
    with transaction(rt.db) as s:
        _record(s, rt, operator, "test.kept")
        _in_dropped_savepoint(
            s, lambda: audit.record(s, rt, operator, action="test.gone", organisation_id="ghost")
        )
    with rt.db() as s:
        assert s.get(AuditHead, "ghost") is None
        assert s.scalar(select(AuditEvent.id).where(AuditEvent.chain == "ghost")) is None
    assert audit.verify(rt, audit.SERVICE_CHAIN) == 1
    assert audit_rollback.verify_all(rt).ok


def test_a_savepoint_rolled_back_after_a_released_one_leaves_the_head_signed(
    rt: Runtime, operator: Actor
) -> None:
    with transaction(rt.db) as s:
        _record(s, rt, operator, "test.first")
        with s.begin_nested():
            _record(s, rt, operator, "test.released")
        _in_dropped_savepoint(s, lambda: _record(s, rt, operator, "test.dropped"))
    assert [a for _, a in _actions(rt)] == ["test.first", "test.released"]
    assert audit.verify(rt, audit.SERVICE_CHAIN) == 2
    report = audit_rollback.verify_all(rt)
    assert report.ok
    assert [c.anchored for c in report.chains if c.chain == audit.SERVICE_CHAIN] == [2]
