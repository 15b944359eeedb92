"""Columns typed with the domain vocabulary store the same strings as before, on both databases.

Rows written by code from before the enums (plain strings, straight SQL) read back as
members; members written through the ORM land in the database as the plain strings; and
no migration was needed, so the schema is unchanged.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import StatementError
from tests.support import factories as f

from cardvault.domain.vocabulary import (
    AuthState,
    CardStatus,
    MethodKind,
    MethodStatus,
    NotificationStatus,
    RaRole,
    SignInRoute,
)
from cardvault.services.cards import methods
from cardvault.services.directory import registry as directory
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import Association, Card, RaRoleGrant


def test_a_card_status_is_stored_as_its_plain_string(rt: Runtime, operator: Actor) -> None:
    f.org(rt, operator)
    issued = f.issued_card(rt, operator)
    with rt.db() as s:
        raw = s.execute(
            text("SELECT status FROM cards WHERE serial = :s"), {"s": issued.serial}
        ).scalar_one()
        card = s.scalar(select(Card).where(Card.serial == issued.serial))
    assert raw == "issued"
    assert card is not None
    assert card.status is CardStatus.ISSUED


def test_a_string_written_before_the_enums_reads_back_as_a_member(
    rt: Runtime, operator: Actor
) -> None:
    f.org(rt, operator)
    issued = f.issued_card(rt, operator)
    with rt.db() as s, s.begin():
        s.execute(
            text("UPDATE cards SET status = 'locked', locked_from = 'active' WHERE serial = :s"),
            {"s": issued.serial},
        )
    with rt.db() as s:
        card = s.scalar(select(Card).where(Card.serial == issued.serial))
        assert card is not None
        assert (card.status, card.locked_from) == (CardStatus.LOCKED, CardStatus.ACTIVE)
        # comparing a column with a member binds the plain string
        found = s.scalar(select(Card.id).where(Card.status == CardStatus.LOCKED))
        assert found == card.id


def test_a_value_outside_the_vocabulary_is_refused_and_nothing_is_written(
    rt: Runtime, operator: Actor
) -> None:
    f.org(rt, operator)
    issued = f.issued_card(rt, operator)
    with rt.db() as s, pytest.raises(StatementError), s.begin():
        s.execute(update(Card).where(Card.serial == issued.serial).values(status="lost"))
    with rt.db() as s:
        raw = s.execute(
            text("SELECT status FROM cards WHERE serial = :s"), {"s": issued.serial}
        ).scalar_one()
    assert raw == "issued"


def test_kinds_statuses_and_roles_round_trip_as_their_strings(rt: Runtime, operator: Actor) -> None:
    f.org(rt, operator)
    card = f.active_card(rt, operator)
    methods.add_ad_account(rt, operator, serial=card.serial, org_code="ORG1", account="NHS\\jo")
    methods.add_totp(rt, operator, serial=card.serial, org_code="ORG1", confirmed=False)
    directory.grant_role(rt, operator, user_id=card.user_id, org_code="ORG1", role="ra_agent")
    with rt.db() as s:
        raw = s.execute(text("SELECT method, status FROM associations ORDER BY method")).all()
        rows = s.scalars(select(Association).order_by(Association.method)).all()
        role = s.execute(text("SELECT role FROM ra_roles")).scalar_one()
        grant = s.scalars(select(RaRoleGrant)).one()
    assert [tuple(r) for r in raw] == [("ad_account", "active"), ("totp", "pending")]
    assert [(r.method, r.status) for r in rows] == [
        (MethodKind.AD_ACCOUNT, MethodStatus.ACTIVE),
        (MethodKind.TOTP, MethodStatus.PENDING),
    ]
    assert (role, grant.role) == ("ra_agent", RaRole.RA_AGENT)


def test_the_stored_strings_are_the_ones_before_the_enums() -> None:
    """A changed value would need a data migration: these must never move."""
    assert [s.value for s in CardStatus] == [
        "blank",
        "issued",
        "enrolled",
        "active",
        "locked",
        "suspended",  # issue 17: certificates on hold (migration 0110_pki)
        "revoked",
    ]
    # issue 19 adds the sponsor; the values stored before keep their strings
    assert [r.value for r in RaRole] == ["ra_manager", "ra_agent", "sponsor", "auditor"]
    assert MethodKind.SECURITY_KEY == "fido2"  # renamed in code, not in stored rows
    # issue 21 adds the organisation choice; the values stored before keep their strings
    assert [a.value for a in AuthState] == [
        "second_factor",
        "organisation",
        "new_passcode",
        "enrol",
        "failed",
    ]
    assert [m.value for m in MethodStatus] == ["pending", "active"]
    assert [n.value for n in NotificationStatus] == ["pending", "sending", "sent", "failed"]
    assert MethodKind.SECURITY_KEY == "fido2"
    assert SignInRoute.SECURITY_KEY == "fido2"
