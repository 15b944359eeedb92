"""Interrupting ``card issue`` at any point leaves either no card or a whole one.

``cardvault card issue`` runs as a subprocess and is killed with SIGKILL (no clean-up code
runs) after a range of delays. The delays are spread over the time one uninterrupted issue
takes on this machine, denser towards its end, where the database transaction happens.
"""

from __future__ import annotations

import signal
import time

import pytest
from sqlalchemy import func, select
from tests.support import factories as f
from tests.support.cli import Cli

from cardvault.services.audit import trail as audit
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import (
    AuditEvent,
    Card,
    Certificate,
    KeySlotInfo,
    Organisation,
    Person,
)

FRACTIONS = (0.0, 0.5, 0.7, 0.8, 0.87, 0.92, 0.96, 1.0)

pytestmark = pytest.mark.slow  # every test here runs the real CLI (a second each)


def _issue_args(uid: str) -> tuple[str, ...]:
    return ("card", "issue", "--org", "ORG1", "--user-id", uid, "--passcode-stdin")


def _issue_killed_after(cli: Cli, uid: str, delay: float) -> int | None:
    """Start ``card issue``, SIGKILL it after ``delay`` s; its exit code if it finished first."""
    proc = cli.popen(*_issue_args(uid))
    assert proc.stdin is not None
    proc.stdin.write(f.ISSUANCE_PASSCODE + "\n")
    proc.stdin.flush()
    time.sleep(delay)
    finished = proc.poll()
    if finished is None:
        proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    return finished


def _assert_none_or_whole(rt: Runtime, uid: str) -> bool:
    """True for a whole card, False for none; fails on anything in between."""
    with rt.db() as s:
        person = s.scalar(select(Person).where(Person.user_id == uid))
        assert person is not None
        cards = list(s.scalars(select(Card).where(Card.person_id == person.id)))
        issued_events = list(
            s.scalars(
                select(AuditEvent).where(
                    AuditEvent.person_id == person.id, AuditEvent.action == "card.issued"
                )
            )
        )
        if not cards:
            assert issued_events == []
            return False
        assert len(cards) == 1
        card = cards[0]
        assert card.status == "issued"
        assert card.key_record is not None
        slots = list(s.scalars(select(KeySlotInfo.name).where(KeySlotInfo.card_id == card.id)))
        assert slots == ["passcode"]
        usages = set(s.scalars(select(Certificate.usage).where(Certificate.card_id == card.id)))
        assert usages == {"authentication", "content_commitment"}
        assert [e.card_id for e in issued_events] == [card.id]
        return True


def test_killed_card_issue_leaves_no_card_or_a_whole_one(
    cli: Cli, rt: Runtime, operator: Actor
) -> None:
    f.org(rt, operator, policy={"key_algorithm": "ecp256"})
    people = [f.person(rt, operator, "ORG1") for _ in range(len(FRACTIONS) + 1)]

    started = time.monotonic()
    cli.run(*_issue_args(people[0]), stdin=f.ISSUANCE_PASSCODE + "\n").ok()
    whole_issue = time.monotonic() - started
    assert _assert_none_or_whole(rt, people[0])

    outcomes = []
    for uid, fraction in zip(people[1:], FRACTIONS, strict=True):
        delay = max(0.05, whole_issue * fraction)
        finished = _issue_killed_after(cli, uid, delay)
        whole = _assert_none_or_whole(rt, uid)
        if finished is not None:
            assert finished == 0
            assert whole
        outcomes.append(whole)

    assert outcomes[0] is False  # killed while Python was still starting
    with rt.db() as s:
        cards = s.scalar(select(func.count()).select_from(Card))
        certs = s.scalar(select(func.count()).select_from(Certificate))
        orphans = s.scalar(
            select(func.count()).select_from(Certificate).where(~Certificate.card_id.in_(
                select(Card.id)
            ))
        )  # fmt: skip
    assert cards == 1 + sum(outcomes)
    assert (certs, orphans) == (2 * cards, 0)
    with rt.db() as s:
        org_id = s.scalar(select(Organisation.id).where(Organisation.code == "ORG1"))
    assert audit.verify(rt, str(org_id)) == 1 + len(people) + cards  # org, persons, cards
