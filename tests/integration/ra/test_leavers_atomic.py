"""A leaver is ended in one transaction (issue 19 review), on SQLite and PostgreSQL: a failure
at the last step leaves the person exactly as they were (card, keys, methods, phone,
membership, no audit event), the RA's second try ends them completely, and two RAs
recording the same leaver at once end them once."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import func, select
from tests.support import auth as a
from tests.support import factories as f
from tests.support import phones as ph
from tests.support import ra_web as w

from cardvault.domain.audit_actions import AuditAction
from cardvault.errors import NotFound
from cardvault.services.cards import methods
from cardvault.services.ra import leavers
from cardvault.services.ra.actions import RaContext
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import (
    Association,
    AuditEvent,
    Card,
    Device,
    Membership,
    Organisation,
    Person,
)


class Crash(Exception):
    """The failure injected after every step of leaving ran, before the commit."""


@pytest.fixture
def leaver(rt: Runtime, operator: Actor) -> tuple[RaContext, f.IssuedFixture]:
    """A person of ORGA only, with an authenticator app and a paired phone there."""
    a.open_org(rt, operator, "ORGA")
    card = f.active_card(rt, operator, "ORGA", forename="Lee", surname="Leaver")
    methods.add_totp(rt, operator, serial=card.serial, org_code="ORGA")
    ph.pair(rt, operator, card.serial, "ORGA")
    with rt.db() as s:
        org = s.scalar(select(Organisation).where(Organisation.code == "ORGA"))
        assert org is not None
        ctx = RaContext(
            actor=operator, organisation_id=org.id, organisation_code="ORGA", role="ra_manager"
        )
    return ctx, card


def _state(rt: Runtime, serial: str) -> dict[str, Any]:
    with rt.db() as s:
        card = s.scalar(select(Card).where(Card.serial == serial))
        assert card is not None
        person = s.get(Person, card.person_id)
        assert person is not None

        def count(model: Any, *where: Any) -> int:
            return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)

        return {
            "card": card.status,
            "keys": card.key_record is not None,
            "methods": count(Association, Association.card_id == card.id),
            "phones": count(Device, Device.card_id == card.id, Device.status == "active"),
            "member": count(Membership, Membership.person_id == person.id),
            "left": person.left_at is not None,
            "events": sorted(
                str(e.action)
                for e in s.scalars(select(AuditEvent).where(AuditEvent.person_id == person.id))
                if e.action
                in (
                    AuditAction.METHOD_REMOVED,
                    AuditAction.DEVICE_REVOKED,
                    AuditAction.CARD_REVOKED,
                    AuditAction.PERSON_LEFT,
                )
            ),
        }


def test_a_failure_at_the_last_step_leaves_the_person_as_they_were(
    rt: Runtime, leaver: tuple[RaContext, f.IssuedFixture], monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx, card = leaver
    before = _state(rt, card.serial)
    assert before["card"] == "active"
    assert before["methods"] >= 1
    assert before["phones"] == 1
    real = leavers._end_membership

    def crash_after(*args: Any, **kw: Any) -> None:
        real(*args, **kw)  # the membership is deleted and PERSON_LEFT recorded: then a crash
        raise Crash

    monkeypatch.setattr(leavers, "_end_membership", crash_after)
    with pytest.raises(Crash):
        leavers.leave(rt, ctx, card.user_id, "moved on")
    assert _state(rt, card.serial) == before  # nothing half-done

    monkeypatch.setattr(leavers, "_end_membership", real)
    result = leavers.leave(rt, ctx, card.user_id, "moved on")
    assert result.card_revoked
    assert result.methods_removed == before["methods"] + 1
    after = _state(rt, card.serial)
    assert after["card"] == "revoked"
    assert not after["keys"]
    assert (after["methods"], after["phones"], after["member"], after["left"]) == (0, 0, 0, True)
    assert after["events"].count(str(AuditAction.PERSON_LEFT)) == 1
    assert after["events"].count(str(AuditAction.CARD_REVOKED)) == 1


def test_two_ras_recording_the_same_leaver_end_them_once(
    rt: Runtime, operator: Actor, leaver: tuple[RaContext, f.IssuedFixture]
) -> None:
    ctx, card = leaver
    other = w.ra_user(rt, operator, "ORGA", forename="Otto")
    ctx_b = RaContext(
        actor=Actor(ref="ra:other", display=other.holder.card.user_id),
        organisation_id=ctx.organisation_id,
        organisation_code="ORGA",
        role="ra_agent",
    )
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def run(c: RaContext) -> None:
        barrier.wait()
        try:
            outcomes.append(leavers.leave(rt, c, card.user_id, "moved on"))
        except Exception as exc:  # the loser's error is the assertion's subject
            outcomes.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in (ctx, ctx_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    done = [o for o in outcomes if isinstance(o, leavers.LeaverResult)]
    refused = [o for o in outcomes if not isinstance(o, leavers.LeaverResult)]
    assert len(done) == 1, outcomes
    assert len(refused) == 1, refused
    assert isinstance(refused[0], NotFound), refused
    after = _state(rt, card.serial)
    assert after["card"] == "revoked"
    assert after["events"].count(str(AuditAction.PERSON_LEFT)) == 1
    assert after["events"].count(str(AuditAction.CARD_REVOKED)) == 1
