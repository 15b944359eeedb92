"""Audit anchors: the line format, its signatures, restores, and the verdict on a chain."""

from __future__ import annotations

import base64
import contextlib
import json
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardvault.crypto.signing import generate_audit_key, public_key_bytes, sign_ed25519
from cardvault.domain.audit_anchor import (
    Anchor,
    AnchorFindings,
    AnchorInvalid,
    AnchorKind,
    AnchorUnreadable,
    ChainRolledBack,
    Restores,
    RollbackProblem,
    anchor_line,
    judge,
    parse_anchor_line,
    restore_message,
    restore_point,
    verify_anchor,
)
from cardvault.domain.audit_chain import ChainHead, checkpoint_message

KEY = generate_audit_key()
PUBLIC = public_key_bytes(KEY)
CHAIN = "0b4e2a9c-51d2-4c3e-9d55-5f0f6f1d2a10"
HASH = "9f" * 32
T1 = "2024-05-01T09:30:00.000001Z"
T2 = "2024-05-02T10:00:00.000000Z"


def head_anchor(seq: int = 57, signed_at: str = T1, hash_: str = HASH) -> Anchor:
    head = ChainHead(chain=CHAIN, seq=seq, hash=hash_)
    return Anchor(
        kind=AnchorKind.HEAD,
        chain=CHAIN,
        seq=seq,
        hash=hash_,
        signed_at=signed_at,
        signature=sign_ed25519(KEY, checkpoint_message(head, signed_at)),
    )


def restore_anchor(seq: int = 42, restored_to: int = 41, signed_at: str = T2) -> Anchor:
    head = ChainHead(chain=CHAIN, seq=seq, hash=HASH)
    return Anchor(
        kind=AnchorKind.RESTORE,
        chain=CHAIN,
        seq=seq,
        hash=HASH,
        signed_at=signed_at,
        restored_to=restored_to,
        signature=sign_ed25519(KEY, restore_message(head, restored_to, signed_at)),
    )


def test_a_head_anchor_is_the_signed_head_on_one_line_and_reads_back() -> None:
    anchor = head_anchor()
    line = anchor_line(anchor)
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert json.loads(line) == {
        "v": 1,
        "kind": "head",
        "chain": CHAIN,
        "seq": 57,
        "hash": HASH,
        "signed_at": T1,
        "signature": base64.b64encode(anchor.signature).decode(),
    }
    assert parse_anchor_line(line.decode()) == anchor
    verify_anchor(anchor, PUBLIC)


def test_a_head_anchor_carries_the_same_signature_as_the_head_row() -> None:
    anchor = head_anchor()
    assert anchor.message() == checkpoint_message(anchor.head, T1)


def test_a_restore_anchor_signs_its_restore_point() -> None:
    anchor = restore_anchor()
    assert parse_anchor_line(anchor_line(anchor).decode()) == anchor
    verify_anchor(anchor, PUBLIC)
    with pytest.raises(AnchorInvalid, match=r"restore anchor of chain .* at event 42"):
        verify_anchor(replace(anchor, restored_to=0), PUBLIC)


@pytest.mark.parametrize(
    "change",
    [
        {"seq": 58},
        {"hash": "8f" * 32},
        {"signed_at": T2},
        {"chain": "service"},
        {"signature": bytes(64)},
    ],
)
def test_an_anchor_changed_in_any_field_does_not_verify(change: dict[str, object]) -> None:
    with pytest.raises(AnchorInvalid, match="not signed by this service's audit key"):
        verify_anchor(replace(head_anchor(), **change), PUBLIC)  # type: ignore[arg-type]


def test_a_syslog_prefix_before_the_line_is_skipped() -> None:
    line = anchor_line(head_anchor()).decode()
    exported = f"Dec  7 04:58:17 vault1 cardvault-audit-anchor[812]: {line}"
    assert parse_anchor_line(exported) == head_anchor()


def _fields(**change: object) -> str:
    data = json.loads(anchor_line(head_anchor()))
    data.update(change)
    return json.dumps({k: v for k, v in data.items() if v is not ...})


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("", "no JSON object"),
        ("{not json", "not JSON"),
        ("[1, 2]", "no JSON object"),
        ('x: ["a"]', "no JSON object"),
        ("{" * 5000, "longer than"),
        ('{"a":' + "[" * 1000 + "]" * 1000 + "}", "not JSON"),
        (_fields(kind="checkpoint"), "kind 'checkpoint' is not head or restore"),
        (_fields(extra=1), "has the fields"),
        (_fields(signature=...), "has the fields"),
        (_fields(restored_to=3), "has the fields"),
        (_fields(v=2), "version 2"),
        (_fields(seq=0), "seq must be a whole number from 1"),
        (_fields(seq=True), "seq must be a whole number"),
        (_fields(seq="57"), "seq must be a whole number"),
        (_fields(hash="9F" * 32), "hash is malformed"),
        (_fields(hash="9f" * 31), "hash is malformed"),
        (_fields(chain="a/b"), "chain is malformed"),
        (_fields(chain="a" * 41), "chain is malformed"),
        (_fields(signed_at="2024-05-01 09:30:00"), "signed_at is malformed"),
        (_fields(signature="!!"), "signature must be 64 bytes"),
        (_fields(signature=base64.b64encode(bytes(63)).decode()), "signature must be 64 bytes"),
        (_fields(signature=7), "signature must be 64 bytes"),
    ],
)
def test_a_line_that_is_not_exactly_an_anchor_is_refused_saying_why(line: str, says: str) -> None:
    with pytest.raises(AnchorUnreadable, match=says):
        parse_anchor_line(line)


def test_a_restore_must_keep_less_than_it_pins() -> None:
    data = json.loads(anchor_line(restore_anchor(seq=42, restored_to=41)))
    data["restored_to"] = 42
    with pytest.raises(AnchorUnreadable, match="restored_to must come before its seq"):
        parse_anchor_line(json.dumps(data))


@given(st.text(max_size=300))
def test_any_text_is_an_anchor_or_refused_as_unreadable(text: str) -> None:
    with contextlib.suppress(AnchorUnreadable):
        parse_anchor_line(text)


def test_a_restore_supersedes_older_anchors_beyond_its_restore_point_only() -> None:
    restores = Restores()
    restores.add(head_anchor())  # heads are not restores
    assert restores.supersede(head_anchor()) is False
    restores.add(restore_anchor(seq=42, restored_to=41, signed_at=T2))
    assert restores.supersede(head_anchor(seq=57, signed_at=T1)) is True
    assert restores.supersede(head_anchor(seq=42, signed_at=T1)) is True
    assert restores.supersede(head_anchor(seq=41, signed_at=T1)) is False
    assert restores.supersede(head_anchor(seq=57, signed_at="2024-05-03T00:00:00.000000Z")) is False
    assert restores.supersede(restore_anchor(seq=42, restored_to=41, signed_at=T2)) is False
    other = replace(head_anchor(seq=57, signed_at=T1), chain="service")
    assert restores.supersede(other) is False


def test_the_restore_point_is_where_the_database_and_the_anchors_part() -> None:
    assert restore_point(41, None) == 41
    assert restore_point(45, 42) == 41
    assert restore_point(41, 50) == 41
    assert restore_point(0, None) == 0


def _findings(*seen: tuple[int, bool]) -> AnchorFindings:
    findings = AnchorFindings()
    for seq, matches in seen:
        findings.saw(seq, matches=matches)
    return findings


def test_a_chain_behind_its_anchors_is_named_with_how_far_behind() -> None:
    findings = _findings((12, True), (41, True), (57, False))
    with pytest.raises(ChainRolledBack) as caught:
        judge("DEMO", database_seq=41, findings=findings, organisation=True)
    assert caught.value.message == (
        "The audit chain was rolled back: chain DEMO: database head at event 41, anchored "
        "head at event 57: 16 events missing — a rollback or a restore."
    )
    assert caught.value.problem is RollbackProblem.BEHIND
    assert caught.value.as_dict()["missing"] == 16
    assert "acknowledge-restore --chain DEMO" in (caught.value.remedy or "")


def test_a_chain_rolled_back_and_written_again_is_named_where_it_parts() -> None:
    findings = _findings((40, True), (45, False), (50, False), (60, True))
    with pytest.raises(ChainRolledBack, match="event 45 in the database is not the event") as c:
        judge("DEMO", database_seq=60, findings=findings, organisation=True)
    assert (c.value.problem, c.value.diverged_at, c.value.as_dict()["missing"]) == (
        RollbackProblem.DIVERGED,
        45,
        0,
    )


def test_behind_and_parted_says_both() -> None:
    findings = _findings((43, False), (57, False))
    with pytest.raises(ChainRolledBack, match="1 event missing; and event 43 differs"):
        judge("DEMO", database_seq=56, findings=findings, organisation=True)


def test_an_organisation_without_a_chain_fails_with_or_without_anchors() -> None:
    with pytest.raises(ChainRolledBack, match="organisation exists but its audit chain is gone"):
        judge("DEMO", database_seq=0, findings=AnchorFindings(), organisation=True)
    with pytest.raises(ChainRolledBack, match="its anchors reach event 7"):
        judge("DEMO", database_seq=0, findings=_findings((7, False)), organisation=True)


def test_a_deleted_chain_without_organisation_fails_by_its_anchors() -> None:
    with pytest.raises(
        ChainRolledBack, match="no events in the database, anchored head at event 9"
    ):
        judge("service", database_seq=0, findings=_findings((9, False)), organisation=False)
    judge("service", database_seq=0, findings=AnchorFindings(), organisation=False)


def test_a_chain_at_or_past_its_anchors_passes() -> None:
    judge("DEMO", database_seq=57, findings=_findings((12, True), (57, True)), organisation=True)
    judge("DEMO", database_seq=90, findings=_findings((57, True)), organisation=True)
