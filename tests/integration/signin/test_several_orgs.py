"""Signing in to one of several organisations (issue 21), on SQLite and PostgreSQL: an email
address names no organisation, so when several would admit the sign-in the holder chooses
one after the passcode, and the second factors, the networks, the session and the audit
chain are that organisation's."""

from __future__ import annotations

import pyotp
import pytest
from sqlalchemy import select
from tests.support import auth as a
from tests.support import factories as f
from tests.support import phones as ph

from cardvault.errors import InvalidInput
from cardvault.services.cards import methods
from cardvault.services.devices import push
from cardvault.services.directory import registry as directory
from cardvault.services.signin.engine import (
    Engine,
    LoginRequest,
    LoginResult,
    SignInFailed,
    TransactionInvalid,
)
from cardvault.services.signin.factors import FactorAnswer
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import AuditEvent, Organisation

EMAIL = "two.orgs@example.org"
ELSEWHERE = "10.9.1.1"


@pytest.fixture
def engine(rt: Runtime) -> Engine:
    return Engine(rt)


def _two_orgs(
    rt: Runtime, operator: Actor, org2_networks: list[str]
) -> tuple[f.IssuedFixture, ph.Phone, str]:
    """ORG1 allows push only, ORG2 an authenticator app's code only; the holder has a phone
    and an app in each (so only the policy decides what is offered)."""
    f.org(rt, operator, "ORG1", networks=a.LOOPBACK, policy={"second_factors": ["authenticator"]})
    f.org(rt, operator, "ORG2", networks=org2_networks, policy={"second_factors": ["totp"]})
    card = f.active_card(rt, operator, email=EMAIL)
    directory.add_membership(rt, operator, card.user_id, "ORG2")
    phone = ph.pair(rt, operator, card.serial, "ORG1")
    if org2_networks == a.LOOPBACK:  # a phone pairs from the organisation's network
        ph.pair(rt, operator, card.serial, "ORG2")
    methods.add_totp(rt, operator, serial=card.serial, org_code="ORG1")
    app = methods.add_totp(rt, operator, serial=card.serial, org_code="ORG2")
    return card, phone, app.secret


@pytest.fixture
def two_orgs(rt: Runtime, operator: Actor) -> tuple[f.IssuedFixture, ph.Phone, str]:
    return _two_orgs(rt, operator, a.LOOPBACK)


def _login(engine: Engine, *, org: str | None = None, address: str = a.LOCAL) -> LoginResult:
    return engine.login(
        a.client(address),
        LoginRequest(
            identifier_kind="email",
            identifier=EMAIL,
            passcode=f.STRONG_PASSCODE,
            organisation=org,
        ),
    )


def _chain(rt: Runtime, card_id: str, action: str) -> list[str]:
    """The organisations whose chains hold the card's events of ``action``."""
    with rt.db() as s:
        return list(
            s.scalars(
                select(Organisation.code)
                .join(AuditEvent, AuditEvent.organisation_id == Organisation.id)
                .where(AuditEvent.card_id == card_id, AuditEvent.action == action)
                .order_by(AuditEvent.occurred_at, AuditEvent.seq)
            )
        )


def test_the_holder_chooses_and_the_chosen_policy_applies(
    rt: Runtime, engine: Engine, two_orgs: tuple[f.IssuedFixture, ph.Phone, str]
) -> None:
    card, _phone, secret = two_orgs
    first = _login(engine)
    assert [(o.code, o.name) for o in first.organisations] == [
        ("ORG1", "Organisation ORG1"),
        ("ORG2", "Organisation ORG2"),
    ]
    assert first.second_factors == ()
    with pytest.raises(TransactionInvalid):  # no second factor before the choice
        engine.complete_code(a.client(), first.transaction_id, pyotp.TOTP(secret).now())

    chosen = engine.choose_organisation(a.client(), first.transaction_id, "org2")

    assert [o.method for o in chosen.second_factors] == ["totp"]  # ORG2: the app only
    with pytest.raises(InvalidInput):  # ORG2 does not allow push
        engine.complete_factor(
            a.client(), first.transaction_id, FactorAnswer(method="authenticator", challenge_id="x")
        )
    grant = engine.complete_code(a.client(), first.transaction_id, pyotp.TOTP(secret).now())
    assert grant.organisation == "ORG2"
    assert _chain(rt, card.card_id, "auth.organisation_chosen") == ["ORG2"]
    assert _chain(rt, card.card_id, "auth.second_factor")[-1] == "ORG2"
    assert _chain(rt, card.card_id, "session.opened") == ["ORG2"]

    again = _login(engine)
    offered = engine.choose_organisation(a.client(), again.transaction_id, "ORG1")
    (phone_offer,) = offered.second_factors  # ORG1: the phone only
    assert phone_offer.method == "authenticator"
    started = push.start(rt, a.client(), again.transaction_id)
    assert started.devices == 1  # the phone paired in ORG1


def test_push_approved_opens_a_session_in_the_push_only_organisation(
    rt: Runtime, engine: Engine, two_orgs: tuple[f.IssuedFixture, ph.Phone, str]
) -> None:
    _card, phone, _secret = two_orgs
    login = _login(engine)
    engine.choose_organisation(a.client(), login.transaction_id, "ORG1")
    started = push.start(rt, a.client(), login.transaction_id)
    phone.respond(rt, started.challenge_id, f"{started.number:02d}")

    grant = engine.complete_factor(
        a.client(),
        login.transaction_id,
        FactorAnswer(method="authenticator", challenge_id=started.challenge_id),
    )

    assert grant.organisation == "ORG1"


def test_naming_the_organisation_skips_the_choice(
    engine: Engine, two_orgs: tuple[f.IssuedFixture, ph.Phone, str]
) -> None:
    result = _login(engine, org="ORG2")
    assert result.organisations == ()
    assert [o.method for o in result.second_factors] == ["totp"]


def test_only_the_organisations_whose_networks_admit_the_caller_are_listed(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    _card, _phone, secret = _two_orgs(rt, operator, [f"{ELSEWHERE}/32"])

    here = _login(engine)  # loopback: ORG1 only, so no choice
    assert (here.organisations, [o.method for o in here.second_factors]) == (
        (),
        ["authenticator"],
    )
    there = _login(engine, address=ELSEWHERE)  # ORG2's network only
    assert [o.method for o in there.second_factors] == ["totp"]
    grant = engine.complete_code(
        a.client(ELSEWHERE), there.transaction_id, pyotp.TOTP(secret).now()
    )
    assert grant.organisation == "ORG2"
    with pytest.raises(SignInFailed):  # no organisation admits this address
        _login(engine, address="192.0.2.7")


def test_an_organisation_not_listed_cannot_be_chosen(
    rt: Runtime, operator: Actor, engine: Engine, two_orgs: tuple[f.IssuedFixture, ph.Phone, str]
) -> None:
    f.org(rt, operator, "ORG3", networks=a.LOOPBACK)
    result = _login(engine)
    with pytest.raises(InvalidInput, match="ORG3"):
        engine.choose_organisation(a.client(), result.transaction_id, "ORG3")
    with pytest.raises(InvalidInput):  # listed, but not from this address
        engine.choose_organisation(a.client(ELSEWHERE), result.transaction_id, "ORG2")
    engine.choose_organisation(a.client(), result.transaction_id, "ORG1")
    with pytest.raises(TransactionInvalid):  # chosen once
        engine.choose_organisation(a.client(), result.transaction_id, "ORG2")


def test_a_wrong_passcode_lists_nothing(
    engine: Engine, two_orgs: tuple[f.IssuedFixture, ph.Phone, str]
) -> None:
    with pytest.raises(SignInFailed):
        engine.login(
            a.client(),
            LoginRequest(identifier_kind="email", identifier=EMAIL, passcode="not the passcode"),
        )


def _refused_choices(rt: Runtime, card_id: str) -> list[tuple[str, str | None, str, str]]:
    """The card's refused choices: (chain, reason, organisation named, client address)."""
    with rt.db() as s:
        rows = s.execute(
            select(Organisation.code, AuditEvent.reason, AuditEvent.details)
            .join(AuditEvent, AuditEvent.organisation_id == Organisation.id)
            .where(
                AuditEvent.card_id == card_id,
                AuditEvent.action == "auth.organisation_chosen",
                AuditEvent.outcome == "failure",
            )
            .order_by(AuditEvent.occurred_at, AuditEvent.seq)
        )
        return [(c, r, d["organisation"], d["client_address"]) for c, r, d in rows]


def test_a_refused_choice_is_audited_with_the_address_on_the_chain_it_names(
    rt: Runtime, operator: Actor, engine: Engine, two_orgs: tuple[f.IssuedFixture, ph.Phone, str]
) -> None:
    card, _phone, _secret = two_orgs
    f.org(rt, operator, "ORG3", networks=a.LOOPBACK)
    result = _login(engine)
    with pytest.raises(InvalidInput) as refused:
        engine.choose_organisation(a.client(ELSEWHERE), result.transaction_id, "org2")
    assert set(refused.value.as_dict()) == {"code", "message", "field"}  # the reason stays here
    with pytest.raises(InvalidInput):
        engine.choose_organisation(a.client(), result.transaction_id, "ORG3")
    assert _refused_choices(rt, card.card_id) == [
        ("ORG2", "client network not allowed", "ORG2", ELSEWHERE),  # ORG2's RA sees it
        ("ORG1", "organisation not one of the person's", "ORG3", a.LOCAL),  # not ORG3's chain
    ]
    engine.choose_organisation(a.client(), result.transaction_id, "ORG2")  # still waiting
