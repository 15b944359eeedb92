"""HR cards through the service, on SQLite and PostgreSQL: association (normalised,
unique per organisation), sign-in with the tap and the passcode, and the refusals."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from tests.support import auth as a
from tests.support import factories as f
from tests.support import keys as k

from cardvault.errors import InvalidInput
from cardvault.services.cards.errors import AlreadyAssociated
from cardvault.services.directory import registry as directory
from cardvault.services.signin import hr_cards
from cardvault.services.signin.engine import Engine, LoginRequest, LoginResult
from cardvault.services.signin.errors import HrCardsNotAllowed, SignInFailed
from cardvault.services.signin.factors import FactorAnswer
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import AuditEvent, Card, CardSession

UID = "04:a2:2b:1a:c3:5e:80"
NORMAL = "04A22B1AC35E80"


@pytest.fixture
def engine(rt: Runtime) -> Engine:
    return Engine(rt)


def tap(
    engine: Engine,
    uid: str = NORMAL,
    *,
    passcode: str = f.STRONG_PASSCODE,
    org: str | None = None,
    second: str | None = None,
) -> LoginResult:
    return engine.login(
        a.client(),
        LoginRequest(
            identifier_kind="hr_card",
            identifier=uid,
            passcode=passcode,
            organisation=org,
            second_factor=FactorAnswer(method="hr_card", uid=second or uid),
        ),
    )


def test_a_uid_is_stored_normalised_and_labelled(rt: Runtime, operator: Actor) -> None:
    k.org(rt, operator)
    card = f.active_card(rt, operator)

    assoc = hr_cards.add_hr_card(rt, operator, serial=card.serial, org_code="ORG1", uid=UID)

    assert (assoc.method, assoc.lookup_key, assoc.label) == ("hr_card", NORMAL, "HR card …C35E80")
    assert k.events(rt, "method.added")[-1].details["method"] == "hr_card"


def test_a_uid_belongs_to_one_card_per_organisation(rt: Runtime, operator: Actor) -> None:
    k.org(rt, operator, "ORG1")
    k.org(rt, operator, "ORG2")
    first = f.active_card(rt, operator, "ORG1")
    second = f.active_card(rt, operator, "ORG1")
    other = f.active_card(rt, operator, "ORG2")
    hr_cards.add_hr_card(rt, operator, serial=first.serial, org_code="ORG1", uid=UID)

    with pytest.raises(AlreadyAssociated):
        hr_cards.add_hr_card(rt, operator, serial=second.serial, org_code="ORG1", uid=NORMAL)
    assoc = hr_cards.add_hr_card(rt, operator, serial=other.serial, org_code="ORG2", uid=UID)
    assert assoc.lookup_key == NORMAL


@pytest.mark.parametrize("bad", ["", "04A2", "04A22B1AC35E8", "zz:zz:zz:zz", "04 A2 2B 1A C3"])
def test_a_malformed_uid_is_refused_with_what_is_expected(
    rt: Runtime, operator: Actor, bad: str
) -> None:
    k.org(rt, operator)
    card = f.active_card(rt, operator)

    with pytest.raises(InvalidInput) as caught:
        hr_cards.add_hr_card(rt, operator, serial=card.serial, org_code="ORG1", uid=bad)
    assert "4, 7 or 10 bytes" in caught.value.message


def test_an_organisation_without_hr_cards_refuses_to_associate_one(
    rt: Runtime, operator: Actor
) -> None:
    k.org(rt, operator, hr_cards_allowed=False)
    card = f.active_card(rt, operator)

    with pytest.raises(HrCardsNotAllowed):
        hr_cards.add_hr_card(rt, operator, serial=card.serial, org_code="ORG1", uid=UID)


def test_the_tap_and_the_passcode_open_a_session(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    k.org(rt, operator)
    card = f.active_card(rt, operator)
    hr_cards.add_hr_card(rt, operator, serial=card.serial, org_code="ORG1", uid=UID)

    result = tap(engine, "04 A2 2B 1A C3 5E 80")

    assert result.session is not None
    assert result.session.card_serial == card.serial
    assert k.events(rt, "session.opened")[-1].details["method"] == "hr_card+hr_card"


def test_the_hr_card_is_offered_only_for_a_sign_in_that_started_from_it(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    k.org(rt, operator)
    h = a.holder(rt, operator)
    hr_cards.add_hr_card(rt, operator, serial=h.card.serial, org_code="ORG1", uid=UID)

    by_email = k.login_email(engine, h.email)
    by_tap = tap(engine)

    assert [o.method for o in by_email.second_factors] == ["totp"]
    assert "hr_card" in [o.method for o in by_tap.second_factors]


def test_a_uid_not_associated_here_is_refused_audited_and_changes_nothing(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    k.org(rt, operator, "ORG1")
    k.org(rt, operator, "ORG2")
    card = f.active_card(rt, operator, "ORG1")
    hr_cards.add_hr_card(rt, operator, serial=card.serial, org_code="ORG1", uid=UID)

    with pytest.raises(SignInFailed):
        tap(engine, org="ORG2")
    with pytest.raises(SignInFailed):
        tap(engine, "04:00:00:00:00:00:01")

    refused = k.events(rt, "auth.login")[-1]
    assert (refused.outcome, refused.reason) == ("failure", "unknown identifier")
    assert refused.details["identifier_kind"] == "hr_card"
    with rt.db() as s:
        row = s.get(Card, card.card_id)
        assert row is not None
        assert row.failed_attempts == 0
        assert s.scalar(select(CardSession)) is None


def test_an_organisation_that_disables_hr_cards_refuses_the_tap(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    k.org(rt, operator)
    card = f.active_card(rt, operator)
    hr_cards.add_hr_card(rt, operator, serial=card.serial, org_code="ORG1", uid=UID)
    directory.update_policy(rt, operator, "ORG1", {"hr_cards_allowed": False})

    with pytest.raises(SignInFailed):
        tap(engine)

    refused = k.events(rt, "auth.login")[-1]
    assert refused.reason == "sign-in with hr_card not allowed by policy"
    directory.update_policy(
        rt, operator, "ORG1", {"hr_cards_allowed": True, "allowed_methods": ["email"]}
    )
    with pytest.raises(SignInFailed):
        tap(engine)


def test_the_same_uid_in_two_organisations_needs_the_organisation_named(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    k.org(rt, operator, "ORG1")
    k.org(rt, operator, "ORG2")
    card = f.active_card(rt, operator, "ORG1")
    directory.add_membership(rt, operator, card.user_id, "ORG2")
    for code in ("ORG1", "ORG2"):
        hr_cards.add_hr_card(rt, operator, serial=card.serial, org_code=code, uid=UID)

    with pytest.raises(SignInFailed):
        tap(engine)
    result = tap(engine, org="ORG2")
    assert result.session is not None
    assert result.session.organisation == "ORG2"


def test_another_uid_as_the_second_step_is_refused(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    k.org(rt, operator)
    card = f.active_card(rt, operator)
    hr_cards.add_hr_card(rt, operator, serial=card.serial, org_code="ORG1", uid=UID)

    result = tap(engine, second="04:00:00:00:00:00:01")

    assert result.session is None
    assert result.factor_error is not None
    assert result.factor_error.code == "hr_card_mismatch"
    with rt.db() as s:
        failures = s.scalars(
            select(AuditEvent.reason).where(AuditEvent.action == "auth.second_factor")
        ).all()
    assert "HR card UID does not match" in failures


def test_a_wrong_passcode_after_a_tap_counts_towards_the_lock(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    k.org(rt, operator)
    card = f.active_card(rt, operator)
    hr_cards.add_hr_card(rt, operator, serial=card.serial, org_code="ORG1", uid=UID)

    with pytest.raises(SignInFailed):
        tap(engine, passcode="this is not the passcode")

    with rt.db() as s:
        row = s.get(Card, card.card_id)
        assert row is not None
        assert row.failed_attempts == 1
