"""Anchoring against rollback (DESIGN §3.7), on a real database and a real anchor file.

A signed head proves a prefix of a chain, not its end: each test here rolls a chain back the
way someone with SQL access (or a restore of an old backup) would, checks that the chain
alone still verifies, and that the anchors catch it, naming the chain and how far behind.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, update
from tests.support import factories as f

from cardvault.config import Settings
from cardvault.crypto import signing
from cardvault.domain.audit_anchor import ChainRolledBack, RollbackProblem, parse_anchor_line
from cardvault.errors import Conflict, NotFound
from cardvault.services.audit import rollback as audit_rollback
from cardvault.services.audit import trail as audit
from cardvault.services.audit.errors import (
    AnchorsNotReadable,
    AnchorUnavailable,
    AnchorWriteFailed,
)
from cardvault.services.audit.rollback import ChainReport, VerifyReport
from cardvault.services.system import health
from cardvault.services.system.runtime import Actor, Runtime, open_runtime
from cardvault.store.db import transaction
from cardvault.store.models import AuditEvent, AuditHead, Organisation


def _org_id(rt: Runtime, code: str) -> str:
    with rt.db() as s:
        found = s.scalar(select(Organisation.id).where(Organisation.code == code))
    assert found is not None
    return str(found)


def _append(rt: Runtime, actor: Actor, chain: str | None, n: int = 1) -> None:
    """``n`` events, one transaction each (so each is signed and anchored)."""
    for _ in range(n):
        with transaction(rt.db) as s:
            audit.record(s, rt, actor, action="test.appended", organisation_id=chain)


def _head(rt: Runtime, chain: str) -> dict[str, Any]:
    with rt.db() as s:
        row = s.get(AuditHead, chain)
        assert row is not None
        return {"seq": row.seq, "hash": row.hash, "signed_at": row.signed_at, "sig": row.signature}


def _roll_back(rt: Runtime, chain: str, to: dict[str, Any]) -> None:
    """What a restore of an older backup does to one chain: its older (correctly signed)
    head row comes back, and what came after is gone."""
    with rt.db.begin() as s:
        s.execute(delete(AuditEvent).where(AuditEvent.chain == chain, AuditEvent.seq > to["seq"]))
        s.execute(
            update(AuditHead)
            .where(AuditHead.chain == chain)
            .values(seq=to["seq"], hash=to["hash"], signed_at=to["signed_at"], signature=to["sig"])
        )


def _lose(rt: Runtime, actor: Actor, chain: str, n: int) -> dict[str, Any]:
    """``n`` more events, then a rollback to the head before them; returns that head."""
    older = _head(rt, chain)
    _append(rt, actor, chain, n)
    _roll_back(rt, chain, older)
    return older


def _chain(report: VerifyReport, label: str) -> ChainReport:
    return next(c for c in report.chains if c.label == label)


def _rolled_back(report: VerifyReport, label: str) -> ChainRolledBack:
    error = _chain(report, label).error
    assert isinstance(error, ChainRolledBack), error
    return error


def _anchor_lines(settings: Settings) -> list[dict[str, Any]]:
    return [json.loads(line) for line in settings.anchor_file.read_text().splitlines()]


@pytest.fixture
def demo(rt: Runtime, operator: Actor) -> str:
    """Organisation DEMO, whose chain holds 7 events."""
    f.org(rt, operator, "DEMO")
    chain = _org_id(rt, "DEMO")
    _append(rt, operator, chain, 6)
    return chain


# -- signing once per transaction ---------------------------------------------------------


@pytest.fixture
def signatures(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every Ed25519 signature made, by the real function with the real audit key."""
    made: list[bytes] = []
    real = signing.sign_ed25519

    def counting(key: signing.AuditKey, message: bytes) -> bytes:
        made.append(message)
        return real(key, message)

    monkeypatch.setattr(signing, "sign_ed25519", counting)
    return made


def test_a_transaction_signs_each_chain_it_touched_once(
    rt: Runtime, operator: Actor, demo: str, signatures: list[bytes]
) -> None:
    before = len(_anchor_lines(rt.settings))
    with transaction(rt.db) as s:
        for _ in range(10):
            audit.record(s, rt, operator, action="test.many", organisation_id=demo)
        for _ in range(3):
            audit.record(s, rt, operator, action="test.many")

    assert len(signatures) == 2
    assert {json.loads(m)["chain"] for m in signatures} == {demo, audit.SERVICE_CHAIN}
    new = _anchor_lines(rt.settings)[before:]
    assert sorted((a["chain"], a["seq"]) for a in new) == sorted(
        [(demo, 17), (audit.SERVICE_CHAIN, 3)]
    )
    assert audit.verify(rt, demo) == 17
    report = audit_rollback.verify_all(rt)
    assert report.ok, report
    assert _chain(report, "DEMO").anchored == 17


def test_a_transaction_that_fails_signs_and_anchors_nothing(
    rt: Runtime, operator: Actor, demo: str, signatures: list[bytes]
) -> None:
    before = _anchor_lines(rt.settings)

    def fails() -> None:
        with transaction(rt.db) as s:
            audit.record(s, rt, operator, action="test.lost", organisation_id=demo)
            raise RuntimeError("the operation failed")

    with pytest.raises(RuntimeError):
        fails()
    assert signatures == []
    assert _anchor_lines(rt.settings) == before
    assert audit_rollback.verify_all(rt).ok


# -- rollback, deletion, truncation --------------------------------------------------------


def test_a_rollback_to_an_older_signed_head_is_named_with_how_far_behind(
    rt: Runtime, operator: Actor, demo: str
) -> None:
    _lose(rt, operator, demo, 3)  # events 8..10 gone, the head at 7 again

    assert audit.verify(rt, demo) == 7  # the chain alone cannot tell
    report = audit_rollback.verify_all(rt)
    assert not report.ok
    error = _rolled_back(report, "DEMO")
    assert "chain DEMO: database head at event 7, anchored head at event 10: 3 events missing" in (
        error.message
    )
    assert (error.problem, error.database_seq, error.anchored_seq) == (
        RollbackProblem.BEHIND,
        7,
        10,
    )
    assert _chain(report, "service").ok


def test_a_rollback_the_service_then_wrote_past_is_found_where_it_parts(
    rt: Runtime, operator: Actor, demo: str
) -> None:
    _lose(rt, operator, demo, 3)  # events 8..10 gone, the head at 7 again
    _append(rt, operator, demo, 5)  # events 8..12, another history than the anchored 8..10

    assert audit.verify(rt, demo) == 12
    error = _rolled_back(audit_rollback.verify_all(rt), "DEMO")
    assert error.problem is RollbackProblem.DIVERGED
    assert error.diverged_at == 8
    assert "event 8 in the database is not the event anchored at that position" in error.message


def test_an_organisation_whose_chain_was_deleted_fails(
    rt: Runtime, operator: Actor, demo: str
) -> None:
    with rt.db.begin() as s:
        s.execute(delete(AuditEvent).where(AuditEvent.chain == demo))
        s.execute(delete(AuditHead).where(AuditHead.chain == demo))
    assert audit.verify(rt, demo) == 0  # "ok, 0 events" to the chain alone

    error = _rolled_back(audit_rollback.verify_all(rt), "DEMO")
    assert error.problem is RollbackProblem.NO_CHAIN
    assert "the organisation exists but its audit chain is gone" in error.message
    assert "its anchors reach event 7" in error.message

    rt.settings.anchor_file.unlink()  # without any anchors it fails all the same
    assert _rolled_back(audit_rollback.verify_all(rt), "DEMO").problem is RollbackProblem.NO_CHAIN


def test_a_chain_cut_short_with_its_head_is_shorter_than_its_anchors(
    rt: Runtime, operator: Actor
) -> None:
    _append(rt, operator, None, 4)
    with rt.db.begin() as s:  # the service chain, which belongs to no organisation, all gone
        s.execute(delete(AuditEvent).where(AuditEvent.chain == audit.SERVICE_CHAIN))
        s.execute(delete(AuditHead).where(AuditHead.chain == audit.SERVICE_CHAIN))
    assert audit.verify(rt, audit.SERVICE_CHAIN) == 0

    error = _rolled_back(audit_rollback.verify_all(rt), "service")
    assert "chain service: no events in the database, anchored head at event 4: 4 events" in (
        error.message
    )


def test_a_chain_known_only_to_the_anchors_is_reported(rt: Runtime, operator: Actor) -> None:
    f.org(rt, operator, "GONE")
    chain = _org_id(rt, "GONE")
    with rt.db.begin() as s:  # the organisation and everything of it, as in an older backup
        s.execute(delete(AuditEvent).where(AuditEvent.chain == chain))
        s.execute(delete(AuditHead).where(AuditHead.chain == chain))
        s.execute(delete(Organisation).where(Organisation.id == chain))
    error = _rolled_back(audit_rollback.verify_all(rt), chain)
    assert error.problem is RollbackProblem.BEHIND
    assert _rolled_back(audit_rollback.verify_all(rt, org=chain), chain).anchored_seq == 1
    with pytest.raises(NotFound, match="no organisation NOPE and no audit chain"):
        audit_rollback.verify_all(rt, org="nope")

    done = audit_rollback.acknowledge_restore(rt, operator, org=chain, reason="older backup")
    assert [(a.restored_to, a.event_seq) for a in done] == [(0, 1)]
    assert audit_rollback.verify_all(rt).ok


# -- acknowledging a restore --------------------------------------------------------------


def test_an_acknowledged_restore_verifies_and_a_later_rollback_is_still_caught(
    rt: Runtime, operator: Actor, demo: str
) -> None:
    _lose(rt, operator, demo, 3)  # events 8..10 gone, the head at 7 again
    _append(rt, operator, demo, 1)  # the restored service went on before anyone noticed: 8

    with pytest.raises(Conflict, match="there is no restore to acknowledge"):
        audit_rollback.acknowledge_restore(rt, operator, org="service", reason="nothing")
    done = audit_rollback.acknowledge_restore(
        rt, operator, org="DEMO", reason="  restored the  backup of 3 May  "
    )
    assert [
        (a.label, a.database_seq, a.anchored_seq, a.restored_to, a.event_seq) for a in done
    ] == [("DEMO", 8, 10, 7, 9)]
    report = audit_rollback.verify_all(rt)
    assert report.ok, [c.error for c in report.chains]
    assert _chain(report, "DEMO").anchored == 9
    with rt.db() as s:
        ack = s.scalar(select(AuditEvent).where(AuditEvent.chain == demo, AuditEvent.seq == 9))
    assert ack is not None
    assert (ack.action, ack.reason, ack.actor) == (
        "audit.restore_acknowledged",
        "restored the backup of 3 May",
        "cli:tester",
    )
    assert ack.details == {
        "database_seq": 8,
        "anchored_seq": 10,
        "restored_to": 7,
        "problem": "behind",
    }
    last = _anchor_lines(rt.settings)[-1]
    assert (last["kind"], last["seq"], last["restored_to"]) == ("restore", 9, 7)

    _lose(rt, operator, demo, 2)
    error = _rolled_back(audit_rollback.verify_all(rt), "DEMO")
    assert "database head at event 9, anchored head at event 11: 2 events missing" in error.message


def test_a_damaged_chain_cannot_be_acknowledged_as_a_restore(
    rt: Runtime, operator: Actor, demo: str
) -> None:
    _lose(rt, operator, demo, 2)
    with rt.db.begin() as s:
        s.execute(
            update(AuditEvent)
            .where(AuditEvent.chain == demo, AuditEvent.seq == 3)
            .values(action="card.unlocked")
        )
    with pytest.raises(Conflict, match="A restore does not explain the damage to DEMO"):
        audit_rollback.acknowledge_restore(rt, operator, org=None, reason="restore")
    with rt.db() as s:
        acks = s.scalars(
            select(AuditEvent.id).where(AuditEvent.action == "audit.restore_acknowledged")
        )
        assert list(acks) == []


def test_a_lost_anchor_file_is_started_again_by_acknowledging(
    rt: Runtime, operator: Actor, demo: str
) -> None:
    rt.settings.anchor_file.unlink()
    report = audit_rollback.verify_all(rt)
    assert report.anchors_error is not None
    assert "does not exist, but the database holds signed chain heads" in (
        report.anchors_error.message
    )
    done = audit_rollback.acknowledge_restore(rt, operator, org=None, reason="anchors lost")
    assert {a.label for a in done} == {"DEMO"}
    assert audit_rollback.verify_all(rt).ok


# -- concurrency --------------------------------------------------------------------------


def test_two_instances_appending_at_once_leave_a_verifiable_chain_and_anchors(
    settings: Settings, rt: Runtime, operator: Actor, demo: str
) -> None:
    other = open_runtime(settings)  # a second instance: its own engine and anchor writer
    before = len(_anchor_lines(settings))

    def work(job: tuple[Runtime, int]) -> None:
        runtime, n = job
        for k in range(6):
            with transaction(runtime.db) as s:
                for _ in range(2):
                    chain = demo if (n + k) % 2 else None
                    audit.record(s, runtime, operator, action="test.busy", organisation_id=chain)

    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(work, [(rt, 0), (other, 1), (rt, 2), (other, 3)]))
    finally:
        other.close()

    anchors = _anchor_lines(settings)[before:]
    assert len(anchors) == 4 * 6  # one line per transaction: each touched one chain
    report = audit_rollback.verify_all(rt)
    assert report.ok, [c.error for c in report.chains]
    assert _chain(report, "DEMO").events == 7 + 24
    assert _chain(report, "DEMO").anchored == 7 + 24
    assert _chain(report, "service").anchored == 24


def test_a_verification_reads_one_snapshot_and_keeps_no_writer_out(
    rt: Runtime, operator: Actor, demo: str
) -> None:
    with rt.db() as s:
        audit.snapshot(s)
        assert audit.verify_in(s, rt, demo) == 7
        _append(rt, operator, demo, 2)  # the service goes on meanwhile (SQLite included)
        assert audit.verify_in(s, rt, demo) == 7  # unseen: no event beyond the head it read
    assert audit.verify(rt, demo) == 9


# -- the anchor failing -------------------------------------------------------------------


@pytest.fixture
def failing_anchor(
    settings: Settings, rt: Runtime, tmp_path: Path
) -> Iterator[tuple[Runtime, Path]]:
    """A runtime whose anchor file is, for now, a way to a full disk (/dev/full)."""
    path = tmp_path / "anchors" / "anchors.jsonl"
    path.parent.mkdir()
    path.symlink_to("/dev/full")
    runtime = open_runtime(settings.model_copy(update={"audit_anchor_file": path}))
    yield runtime, path
    runtime.close()


def _events(rt: Runtime) -> int:
    with rt.db() as s:
        return len(list(s.scalars(select(AuditEvent.id))))


def test_an_anchor_that_cannot_be_written_fails_the_operation_and_then_refuses(
    failing_anchor: tuple[Runtime, Path], operator: Actor
) -> None:
    rt, path = failing_anchor
    with pytest.raises(AnchorWriteFailed, match="was done and recorded in the audit trail") as e:
        _append(rt, operator, None)
    assert "No space left on device" in e.value.message
    assert _events(rt) == 1  # it committed: the database is the record of what happened

    with pytest.raises(AnchorUnavailable, match="so nothing was done"):
        _append(rt, operator, None)
    with pytest.raises(AnchorUnavailable):
        health.audit_anchor_status(rt)
    assert _events(rt) == 1

    path.unlink()  # the disk has room again: the late line goes first, then the next
    _append(rt, operator, None)
    assert health.audit_anchor_status(rt) == "ok"
    lines = [parse_anchor_line(x) for x in path.read_text().splitlines()]
    assert [(a.chain, a.seq) for a in lines] == [("service", 1), ("service", 2)]
    assert audit_rollback.verify_all(rt).ok


def test_a_nearly_full_anchor_disk_refuses_before_anything_is_written(
    settings: Settings, rt: Runtime, operator: Actor
) -> None:
    roomy = settings.model_copy(update={"audit_anchor_min_free_mib": 1024 * 1024})  # 1 TiB
    runtime = open_runtime(roomy)
    try:
        with pytest.raises(AnchorUnavailable, match=r"is full \(or nearly\)"):
            _append(runtime, operator, None)
        assert _events(runtime) == 0
    finally:
        runtime.close()


def test_a_torn_last_line_is_set_apart_and_reported(
    rt: Runtime, operator: Actor, demo: str
) -> None:
    with rt.settings.anchor_file.open("ab") as torn:
        torn.write(b'{"v":1,"kind":"head","chain":"')  # a crash mid-line
    fresh = open_runtime(rt.settings)  # a restarted process
    try:
        _append(fresh, operator, demo)
    finally:
        fresh.close()
    report = audit_rollback.verify_all(rt)
    assert report.ok
    assert _chain(report, "DEMO").anchored == 8
    assert [u.line for u in report.unreadable] == [8]
    assert report.unreadable[0].reason.startswith("The line is not JSON")


# -- syslog ------------------------------------------------------------------------------


@pytest.fixture
def syslog(tmp_path: Path) -> Iterator[tuple[Path, socket.socket]]:
    """A local syslog socket (what /dev/log is), read by the test."""
    path = tmp_path / "log.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind(str(path))
        receiver.settimeout(10)
        yield path, receiver


def test_anchors_sent_to_syslog_are_verified_from_an_export(
    settings: Settings,
    rt: Runtime,
    operator: Actor,
    syslog: tuple[Path, socket.socket],
    tmp_path: Path,
) -> None:
    path, receiver = syslog
    to_syslog = {"audit_anchor": "syslog", "audit_anchor_syslog_socket": path}
    runtime = open_runtime(settings.model_copy(update=to_syslog))
    try:
        f.org(runtime, operator, "SYS")
        chain = _org_id(runtime, "SYS")
        _append(runtime, operator, chain, 2)
        older = _head(runtime, chain)
        _append(runtime, operator, chain, 1)
        sent = [receiver.recv(4096) for _ in range(4)]
        assert all(m.startswith(b"<38>cardvault-audit-anchor: {") for m in sent), sent
        assert not settings.anchor_file.exists()

        with pytest.raises(AnchorsNotReadable, match="syslog, which cardvault cannot read back"):
            audit_rollback.verify_all(runtime)
        export = tmp_path / "exported.log"
        export.write_bytes(b"".join(b"Dec  7 04:58:17 vault1 " + m[4:] + b"\n" for m in sent))
        report = audit_rollback.verify_all(runtime, anchor_files=[export])
        assert report.ok
        assert (_chain(report, "SYS").anchored, report.anchor_lines) == (4, 4)

        _roll_back(runtime, chain, older)
        error = _rolled_back(audit_rollback.verify_all(runtime, anchor_files=[export]), "SYS")
        assert "database head at event 3, anchored head at event 4: 1 event missing" in (
            error.message
        )
    finally:
        runtime.close()


def test_a_syslog_that_does_not_answer_fails_closed(
    settings: Settings, rt: Runtime, operator: Actor, tmp_path: Path
) -> None:
    to_syslog = {"audit_anchor": "syslog", "audit_anchor_syslog_socket": tmp_path / "none.sock"}
    runtime = open_runtime(settings.model_copy(update=to_syslog))
    try:
        with pytest.raises(AnchorWriteFailed, match="could not be written to syslog at"):
            _append(runtime, operator, None)
        with pytest.raises(AnchorUnavailable):
            _append(runtime, operator, None)
        assert _events(runtime) == 1
    finally:
        runtime.close()
