"""The audit hash chain: building events, and catching every kind of tampering."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cardvault.crypto.signing import generate_audit_key, public_key_bytes, sign_ed25519
from cardvault.domain.audit_chain import (
    GENESIS,
    AuditDetailsInvalid,
    AuditRecord,
    ChainBroken,
    ChainHead,
    ChainProblem,
    CheckpointInvalid,
    canonical_bytes,
    checkpoint_message,
    compute_hash,
    format_timestamp,
    head_of,
    next_record,
    verify_chain,
    verify_checkpoint,
)
from cardvault.errors import IntegrityError

CHAIN = "org-7f3a"
T0 = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)


def build_chain(n: int, chain: str = CHAIN) -> list[AuditRecord]:
    records: list[AuditRecord] = []
    for i in range(n):
        records.append(
            next_record(
                previous=records[-1] if records else None,
                chain=chain,
                event_id=f"ev-{chain}-{i + 1:04d}",
                occurred_at=T0 + timedelta(seconds=i, microseconds=17),
                action="card.authenticate" if i % 2 else "card.issue",
                outcome="failure" if i % 3 == 1 else "success",
                reason="wrong_passcode" if i % 3 == 1 else None,
                actor=f"person-{i % 4}",
                person_id="person-9",
                card_id="card-1",
                organisation_id=chain,
                request_id=f"req-{i}",
                details={"method": "push", "attempts_left": 2 - i % 3, "ok": i % 2 == 0},
            )
        )
    return records


def head(records: list[AuditRecord]) -> ChainHead:
    return head_of(records[-1])


def broken(records: list[AuditRecord], *, head_: ChainHead | None = None) -> ChainBroken:
    with pytest.raises(ChainBroken) as caught:
        verify_chain(records, head=head_, chain=CHAIN)
    return caught.value


# -- building ----------------------------------------------------------------------------


def test_first_event_starts_at_seq_one_after_genesis() -> None:
    first = build_chain(1)[0]
    assert first.seq == 1
    assert first.prev_hash == GENESIS == "0" * 64
    assert first.hash == compute_hash(first)
    assert len(first.hash) == 64


def test_each_event_links_to_the_previous_hash() -> None:
    records = build_chain(5)
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    for before, after in itertools.pairwise(records):
        assert after.prev_hash == before.hash


def test_next_record_can_follow_the_chain_head_instead_of_the_last_event() -> None:
    def after(previous: AuditRecord | ChainHead) -> AuditRecord:
        return next_record(
            previous=previous, chain=CHAIN, event_id="e", occurred_at=T0, action="a", outcome="ok"
        )

    records = build_chain(3)
    assert after(head_of(records[-1])) == after(records[-1])
    first = after(ChainHead(chain=CHAIN, seq=0, hash=GENESIS))
    assert (first.seq, first.prev_hash) == (1, GENESIS)


def test_canonical_bytes_are_sorted_compact_utf8_json_without_the_hash() -> None:
    record = next_record(
        previous=None,
        chain=CHAIN,
        event_id="e1",
        occurred_at=datetime(2024, 5, 1, 10, 0, 0, 5, tzinfo=timezone(timedelta(hours=1))),
        action="ra.card.lock",
        outcome="success",
        details={"b": [1, "ü"], "a": {"z": None, "y": True}},
    )
    expected = (
        '{"action":"ra.card.lock","actor":null,"card_id":null,"chain":"org-7f3a",'
        '"details":{"a":{"y":true,"z":null},"b":[1,"ü"]},"id":"e1",'
        '"occurred_at":"2024-05-01T09:00:00.000005Z","organisation_id":null,"outcome":"success",'
        '"person_id":null,"prev_hash":"' + GENESIS + '","reason":null,"request_id":null,"seq":1}'
    ).encode()
    assert canonical_bytes(record) == expected
    assert record.hash == hashlib.sha256(expected).hexdigest()


def test_hash_does_not_depend_on_the_hash_field() -> None:
    record = build_chain(1)[0]
    assert compute_hash(replace(record, hash="f" * 64)) == record.hash


def test_timestamps_are_utc_with_microseconds_and_z() -> None:
    moment = datetime(2024, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-5)))
    assert format_timestamp(moment) == "2025-01-01T04:59:59.000000Z"
    with pytest.raises(ValueError, match="timezone-aware"):
        format_timestamp(datetime(2024, 1, 1))


def test_details_are_copied_so_later_changes_do_not_alter_the_event() -> None:
    details: dict[str, object] = {"ids": ["a"], "nested": {"n": 1}}
    record = next_record(
        previous=None,
        chain=CHAIN,
        event_id="e1",
        occurred_at=T0,
        action="a",
        outcome="success",
        details=details,
    )
    details["ids"].append("b")  # type: ignore[attr-defined]
    verify_chain([record], head=None, chain=CHAIN)


@pytest.mark.parametrize(
    ("details", "complaint"),
    [
        ({"ratio": 0.5}, "not float"),
        ({"n": float("nan")}, "not float"),
        ({1: "x"}, "string keys"),
        ({"raw": b"secret"}, "not bytes"),
        ({"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}, "nest too deeply"),
        ({"s": "\ud800"}, "valid Unicode"),
    ],
)
def test_details_that_cannot_be_hashed_stably_are_refused(
    details: dict[object, object], complaint: str
) -> None:
    with pytest.raises(AuditDetailsInvalid, match=complaint) as caught:
        next_record(
            previous=None,
            chain=CHAIN,
            event_id="e1",
            occurred_at=T0,
            action="a",
            outcome="success",
            details=details,  # type: ignore[arg-type]
        )
    assert caught.value.code == "audit_details_invalid"


def test_next_record_refuses_a_previous_event_from_another_chain() -> None:
    other = build_chain(1, chain="service")[0]
    with pytest.raises(ValueError, match="belongs to chain 'service'"):
        next_record(
            previous=other,
            chain=CHAIN,
            event_id="e2",
            occurred_at=T0,
            action="a",
            outcome="success",
        )


# -- verification: good chains -----------------------------------------------------------


def test_valid_chain_verifies_and_returns_its_head() -> None:
    records = build_chain(6)
    assert verify_chain(records, head=head(records), chain=CHAIN) == head(records)


def test_empty_chain_verifies() -> None:
    assert verify_chain([], head=None, chain=CHAIN) == ChainHead(chain=CHAIN, seq=0, hash=GENESIS)
    verify_chain([], head=ChainHead(chain=CHAIN, seq=0, hash=GENESIS), chain=CHAIN)


def test_events_written_after_the_signed_head_are_accepted() -> None:
    records = build_chain(6)
    verify_chain(records, head=head_of(records[3]), chain=CHAIN)


def test_chain_survives_a_json_round_trip_as_a_store_would_do() -> None:
    records = build_chain(4)
    stored = [json.loads(json.dumps(r.__dict__)) for r in records]
    verify_chain((AuditRecord(**row) for row in stored), head=head(records), chain=CHAIN)


def test_verification_streams_with_one_event_of_lookahead() -> None:
    records = build_chain(50)
    records[20] = replace(
        records[20], outcome="success" if records[20].outcome != "success" else "x"
    )
    pulled = 0

    def stream() -> Iterator[AuditRecord]:
        nonlocal pulled
        for record in records:
            pulled += 1
            yield record

    with pytest.raises(ChainBroken):
        verify_chain(stream(), head=None, chain=CHAIN)
    assert pulled == 22


# -- verification: each kind of tampering ------------------------------------------------


def test_altered_event_is_reported_with_its_seq_and_id() -> None:
    records = build_chain(9)
    records[6] = replace(records[6], outcome="success", reason=None, actor="person-0")
    error = broken(records)
    assert (error.problem, error.seq, error.event_id) == ("altered", 7, records[6].id)
    assert error.message == (
        f"The audit chain is broken: event 7 (id {records[6].id}) was altered: "
        "its hash does not match its content."
    )
    assert error.code == "audit_chain_broken"
    assert isinstance(error, IntegrityError)
    assert error.as_dict()["problem"] == "altered"


def test_altered_details_are_detected() -> None:
    records = build_chain(3)
    records[1] = replace(records[1], details={**records[1].details, "attempts_left": 3})
    assert (broken(records).problem, broken(records).seq) == ("altered", 2)


def test_altered_and_rehashed_event_is_found_by_the_next_link() -> None:
    records = build_chain(5)
    forged = replace(records[2], action="card.unlock")
    records[2] = replace(forged, hash=compute_hash(forged))
    error = broken(records)
    assert (error.problem, error.seq, error.event_id) == ("altered", 3, records[2].id)
    assert "hash recomputed" in error.message


def test_rewritten_first_event_is_reported() -> None:
    records = build_chain(3)
    forged = replace(records[0], prev_hash="1" * 64)
    records[0] = replace(forged, hash=compute_hash(forged))
    error = broken(records)
    assert (error.problem, error.seq) == ("altered", 1)


def test_deleted_event_is_reported() -> None:
    records = build_chain(8)
    del records[4]
    error = broken(records)
    assert (error.problem, error.seq, error.event_id) == ("deleted", 5, records[4].id)
    assert "event 5 was deleted: after event 4 comes event 6" in error.message


def test_deleted_first_event_is_reported() -> None:
    records = build_chain(3)[1:]
    error = broken(records)
    assert (error.problem, error.seq) == ("deleted", 1)
    assert "after the start of the chain comes event 2" in error.message


def test_deleted_event_with_later_events_renumbered_is_reported() -> None:
    records = build_chain(6)
    renumbered = records[:2] + [replace(r, seq=r.seq - 1) for r in records[3:]]
    error = broken(renumbered)
    assert (error.problem, error.seq) == ("deleted", 3)


def test_inserted_duplicate_event_is_reported() -> None:
    records = build_chain(6)
    records.insert(3, records[2])
    error = broken(records)
    assert (error.problem, error.seq) == ("inserted", 4)
    assert "inserted after event 3" in error.message


def test_inserted_forged_event_with_later_events_renumbered_is_reported() -> None:
    records = build_chain(6)
    forged = next_record(
        previous=records[2],
        chain=CHAIN,
        event_id="forged",
        occurred_at=T0,
        action="ra.role.grant",
        outcome="success",
    )
    tampered = [*records[:3], forged, *(replace(r, seq=r.seq + 1) for r in records[3:])]
    error = broken(tampered)
    assert (error.problem, error.seq, error.event_id) == ("inserted", 4, "forged")


def test_swapped_rows_are_reported_as_reordered() -> None:
    records = build_chain(6)
    records[2], records[3] = records[3], records[2]
    error = broken(records)
    assert (error.problem, error.seq, error.event_id) == ("reordered", 3, records[2].id)


def test_swapped_seqs_are_reported_as_reordered() -> None:
    records = build_chain(6)
    a, b = records[2], records[3]
    records[2], records[3] = replace(b, seq=3), replace(a, seq=4)
    error = broken(records)
    assert (error.problem, error.seq) == ("reordered", 3)
    assert "events 3 and 4 were swapped" in error.message


def test_truncated_chain_is_caught_by_the_signed_head() -> None:
    records = build_chain(8)
    signed = head(records)
    verify_chain(records[:5], head=None, chain=CHAIN)  # undetectable without a head
    error = broken(records[:5], head_=signed)
    assert (error.problem, error.seq, error.event_id) == ("truncated", 6, None)
    assert "ends at event 5, but the signed head says it reached event 8" in error.message


def test_emptied_chain_is_caught_by_the_signed_head() -> None:
    records = build_chain(2)
    error = broken([], head_=head(records))
    assert (error.problem, error.seq) == ("truncated", 1)
    assert "the chain is empty" in error.message


def test_rewritten_tail_is_caught_by_the_signed_head() -> None:
    records = build_chain(6)
    signed = head(records)
    regrown = records[:3]
    for i in range(3):
        regrown.append(
            next_record(
                previous=regrown[-1],
                chain=CHAIN,
                event_id=f"new-{i}",
                occurred_at=T0,
                action="card.issue",
                outcome="success",
            )
        )
    error = broken(regrown, head_=signed)
    assert (error.problem, error.seq, error.event_id) == ("truncated", 6, "new-2")


def test_event_from_another_chain_is_reported() -> None:
    records = build_chain(5)
    records[2] = build_chain(3, chain="service")[2]
    error = broken(records)
    assert (error.problem, error.seq, error.event_id) == ("wrong_chain", 3, records[2].id)


def test_head_of_another_chain_is_refused() -> None:
    records = build_chain(2)
    error = broken(records, head_=ChainHead(chain="service", seq=2, hash=records[1].hash))
    assert error.problem == "wrong_chain"


def test_stored_details_that_no_longer_hash_are_reported_as_altered() -> None:
    records = build_chain(3)
    records[1] = replace(records[1], details={"when": datetime.now(UTC)})
    assert (broken(records).problem, broken(records).seq) == ("altered", 2)


# -- property: any single-row mutation is detected at the first affected row -------------


MUTABLE_FIELDS = [
    "id", "chain", "seq", "occurred_at", "action", "outcome", "reason", "actor",
    "person_id", "card_id", "organisation_id", "request_id", "details", "prev_hash", "hash",
]  # fmt: skip


def different_value(data: st.DataObject, record: AuditRecord, name: str) -> object:
    old = getattr(record, name)
    if name == "seq":
        return data.draw(st.integers(-3, 40).filter(lambda s: s != old))
    if name == "details":
        return data.draw(
            st.dictionaries(st.text(max_size=3), st.integers()).filter(lambda d: d != old)
        )
    if name in ("prev_hash", "hash"):
        return data.draw(
            st.text("0123456789abcdef", min_size=64, max_size=64).filter(lambda h: h != old)
        )
    optional = name in ("reason", "actor", "person_id", "card_id", "organisation_id", "request_id")
    values = st.one_of(st.none(), st.text(max_size=8)) if optional else st.text(max_size=8)
    return data.draw(values.filter(lambda v: v != old))


def mutate(data: st.DataObject, records: list[AuditRecord]) -> list[AuditRecord]:
    kind = data.draw(st.sampled_from(["field", "delete", "swap", "swap_seqs", "duplicate"]))
    out = list(records)
    i = data.draw(st.integers(0, len(records) - 1))
    if kind == "field":
        name = data.draw(st.sampled_from(MUTABLE_FIELDS))
        out[i] = replace(out[i], **{name: different_value(data, out[i], name)})
        if name == "seq":  # the store hands rows back in seq order
            out.sort(key=lambda r: r.seq)
    elif kind == "delete":
        del out[i]
    elif kind == "duplicate":
        out.insert(i + 1, out[i])
    else:
        j = data.draw(st.integers(0, len(records) - 1).filter(lambda j: j != i))
        if kind == "swap":
            out[i], out[j] = out[j], out[i]
        else:
            out[i], out[j] = replace(out[j], seq=out[i].seq), replace(out[i], seq=out[j].seq)
    return out


def first_difference(original: list[AuditRecord], tampered: list[AuditRecord]) -> int:
    for index, (a, b) in enumerate(zip(original, tampered, strict=False)):
        if a != b:
            return index
    return min(len(original), len(tampered))


CHAINS = {n: build_chain(n) for n in range(1, 9)}


@settings(max_examples=400, deadline=None)
@given(n=st.integers(1, 8), data=st.data())
def test_any_single_row_mutation_is_detected_at_the_first_affected_row(
    n: int, data: st.DataObject
) -> None:
    original = CHAINS[n]
    tampered = mutate(data, original)
    if n == 1 and len(tampered) == 1 and tampered[0].seq == 1 and tampered == original:
        return  # nothing changed (cannot happen, but keep the property honest)
    with pytest.raises(ChainBroken) as caught:
        verify_chain(tampered, head=head(original), chain=CHAIN)
    error = caught.value
    assert error.seq == first_difference(original, tampered) + 1
    assert error.problem in set(ChainProblem)


# -- checkpoints -------------------------------------------------------------------------


def test_checkpoint_message_is_canonical_json() -> None:
    signed_head = ChainHead(chain=CHAIN, seq=12, hash="ab" * 32)
    assert (
        checkpoint_message(signed_head, "2024-05-01T10:00:00.000000Z")
        == (
            '{"chain":"org-7f3a","hash":"' + "ab" * 32 + '","seq":12,'
            '"signed_at":"2024-05-01T10:00:00.000000Z","type":"cardvault.audit.checkpoint",'
            '"version":1}'
        ).encode()
    )


def test_signed_checkpoint_verifies_and_a_changed_one_does_not() -> None:
    key = generate_audit_key()
    records = build_chain(4)
    signed_head = head(records)
    when = "2024-05-01T10:00:00.000000Z"
    signature = sign_ed25519(key, checkpoint_message(signed_head, when))
    public = public_key_bytes(key)
    verify_checkpoint(signed_head, signed_at=when, signature=signature, public_key=public)
    for changed in (replace(signed_head, seq=3), replace(signed_head, hash=records[2].hash)):
        with pytest.raises(CheckpointInvalid) as caught:
            verify_checkpoint(changed, signed_at=when, signature=signature, public_key=public)
        assert caught.value.code == "audit_checkpoint_invalid"
    with pytest.raises(CheckpointInvalid):
        verify_checkpoint(
            signed_head,
            signed_at=when,
            signature=signature,
            public_key=public_key_bytes(generate_audit_key()),
        )


def test_chain_head_refuses_an_impossible_empty_head() -> None:
    with pytest.raises(ValueError, match="GENESIS"):
        ChainHead(chain=CHAIN, seq=0, hash="ab" * 32)
