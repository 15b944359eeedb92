"""The authentication engine on a real database: passcode, lockout, TOTP, sessions."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select
from tests.support import auth as a
from tests.support import factories as f
from tests.support import phones as ph

from cardvault.services.cards import methods
from cardvault.services.cards.issuance import revoke_card
from cardvault.services.networks.errors import NetworkNotAllowed
from cardvault.services.signin.engine import Engine, LoginRequest
from cardvault.services.signin.errors import (
    Busy,
    FactorFailed,
    SessionInvalid,
    SignInFailed,
    TransactionInvalid,
)
from cardvault.services.signin.factors import FactorAnswer
from cardvault.services.signin.sessions import logout
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import AuditEvent, AuthTransaction, Card, CardSession
from cardvault.web.errors import status_of


@pytest.fixture
def engine(rt: Runtime) -> Engine:
    return Engine(rt)


def _card(rt: Runtime, card_id: str) -> Card:
    with rt.db() as s:
        card = s.get(Card, card_id)
        assert card is not None
        return card


def _reasons(rt: Runtime, card_id: str) -> list[str | None]:
    with rt.db() as s:
        return list(
            s.scalars(
                select(AuditEvent.reason)
                .where(AuditEvent.card_id == card_id)
                .order_by(AuditEvent.seq)
            )
        )


def test_passcode_and_totp_open_a_session(rt: Runtime, operator: Actor, engine: Engine) -> None:
    a.open_org(rt, operator)
    h = a.holder(rt, operator)
    result = a.login(engine, h, code=h.code())
    assert result.session is not None
    assert result.factor_error is None
    assert len(result.session_key) == 32
    with rt.db() as s:
        row = s.scalar(select(CardSession))
        assert row is not None
        assert row.token_hash != result.session.token
        assert s.scalar(select(AuthTransaction)) is None


def test_two_step_login_asks_for_the_second_factor(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    a.open_org(rt, operator)
    h = a.holder(rt, operator)
    first = a.login(engine, h)
    assert first.session is None
    assert [x.method for x in first.second_factors] == ["totp"]
    grant = engine.complete_factor(
        a.client(), first.transaction_id, FactorAnswer(method="totp", code=h.code())
    )
    assert grant.card_serial == h.card.serial
    with pytest.raises(TransactionInvalid):
        engine.complete_factor(
            a.client(),
            first.transaction_id,
            FactorAnswer(method="totp", code=h.code(time.time() + 30)),
        )


def test_unknown_email_and_wrong_passcode_look_the_same(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    a.open_org(rt, operator)
    h = a.holder(rt, operator)
    with pytest.raises(SignInFailed) as wrong:
        a.login(engine, h, passcode="not the passcode at all")
    with pytest.raises(SignInFailed) as unknown:
        engine.login(
            a.client(),
            LoginRequest(
                identifier_kind="email", identifier="nobody@example.org", passcode="whatever it is"
            ),
        )
    assert wrong.value.as_dict() == unknown.value.as_dict()
    assert status_of(wrong.value) == status_of(unknown.value) == 401


def test_three_wrong_passcodes_lock_and_a_right_one_resets(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    a.open_org(rt, operator)
    h = a.holder(rt, operator)
    for _ in range(2):
        with pytest.raises(SignInFailed):
            a.login(engine, h, passcode="wrong wrong wrong")
    assert _card(rt, h.card.card_id).failed_attempts == 2
    a.login(engine, h)
    assert _card(rt, h.card.card_id).failed_attempts == 0
    for _ in range(3):
        with pytest.raises(SignInFailed):
            a.login(engine, h, passcode="wrong wrong wrong")
    card = _card(rt, h.card.card_id)
    assert card.status == "locked"
    assert card.lock_reason == "three incorrect passcodes"
    with pytest.raises(SignInFailed):
        a.login(engine, h)  # even the right passcode: the card is locked
    assert _card(rt, h.card.card_id).failed_attempts == 3
    assert "incorrect passcode" in _reasons(rt, h.card.card_id)
    assert "card is locked" in _reasons(rt, h.card.card_id)


def test_totp_code_is_accepted_once(rt: Runtime, operator: Actor, engine: Engine) -> None:
    a.open_org(rt, operator)
    h = a.holder(rt, operator)
    code = h.code()
    assert a.login(engine, h, code=code).session is not None
    again = a.login(engine, h, code=code)
    assert again.session is None
    assert again.factor_error is not None
    assert again.factor_error.code == "totp_replayed"
    assert "TOTP code replayed" in _reasons(rt, h.card.card_id)


def test_wrong_totp_is_refused_with_its_reason(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    a.open_org(rt, operator)
    h = a.holder(rt, operator)
    first = a.login(engine, h)
    wrong = "000000" if h.code() != "000000" else "111111"
    with pytest.raises(FactorFailed, match="not right"):
        engine.complete_factor(
            a.client(), first.transaction_id, FactorAnswer(method="totp", code=wrong)
        )
    assert "TOTP code wrong" in _reasons(rt, h.card.card_id)


def test_client_outside_the_allowed_networks_is_refused_like_a_wrong_passcode(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    a.open_org(rt, operator)
    h = a.holder(rt, operator)
    with pytest.raises(SignInFailed):
        a.login(engine, h, code=h.code(), address="203.0.113.9")
    assert _card(rt, h.card.card_id).failed_attempts == 0
    assert _reasons(rt, h.card.card_id)[-1] == "client network not allowed"


def test_a_step_after_the_passcode_from_outside_the_networks_names_no_organisation(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:

    a.open_org(rt, operator)
    h = a.holder(rt, operator)
    txn = a.login(engine, h).transaction_id
    with pytest.raises(NetworkNotAllowed) as refused:
        engine.complete_factor(
            a.client("203.0.113.9"), txn, FactorAnswer(method="totp", code=h.code())
        )
    assert "Organisation ORG1" not in refused.value.diagnostics()
    assert "203.0.113.9" not in refused.value.diagnostics()


def test_ad_account_login_is_scoped_to_its_organisation(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    a.open_org(rt, operator)
    h = a.holder(rt, operator)
    methods.add_ad_account(
        rt, operator, serial=h.card.serial, org_code="ORG1", account="HOSP\\jsmith"
    )
    result = engine.login(
        a.client(),
        LoginRequest(
            identifier_kind="ad_account",
            identifier="hosp\\JSmith",
            passcode=f.STRONG_PASSCODE,
            second_factor=FactorAnswer(method="totp", code=h.code()),
        ),
    )
    assert result.session is not None
    assert result.session.organisation == "ORG1"


def test_revocation_ends_sessions(rt: Runtime, operator: Actor, engine: Engine) -> None:
    a.open_org(rt, operator)
    h = a.holder(rt, operator)
    result = a.login(engine, h, code=h.code())
    assert result.session is not None
    revoke_card(rt, operator, h.card.serial, reason="lost")
    with pytest.raises(SessionInvalid):
        logout(rt, a.client(), result.session.token)
    with pytest.raises(SignInFailed):
        a.login(engine, h)


def test_unknown_identifier_goes_through_the_kdf_like_a_real_attempt(
    rt: Runtime, operator: Actor
) -> None:
    """The decoy path is admitted by the KDF gate exactly as a real one: with the gate full,
    both are refused alike, so neither answers faster by skipping the derivation."""
    from cardvault.services.signin.kdf_gate import KdfGate

    a.open_org(rt, operator)
    h = a.holder(rt, operator)
    rt.kdf_gate = KdfGate(slots=1, queue=0)
    engine = Engine(rt)
    with rt.kdf_gate.admitted():
        with pytest.raises(Busy):
            a.login(engine, h, passcode="a wrong passcode here")
        with pytest.raises(Busy):
            engine.login(
                a.client(),
                LoginRequest(
                    identifier_kind="email",
                    identifier="nobody@example.org",
                    passcode="a wrong passcode here",
                ),
            )
    assert _card(rt, h.card.card_id).failed_attempts == 0


def test_idle_and_absolute_expiry_end_the_session_and_maintenance_deletes_it(
    rt: Runtime, operator: Actor
) -> None:
    from datetime import timedelta

    from cardvault.services.signin import sessions as card_sessions
    from cardvault.services.system import maintenance
    from cardvault.store.types import utcnow

    a.open_org(rt, operator)
    h = a.holder(rt, operator)
    result = a.login(Engine(rt), h, code=h.code())
    assert result.session is not None
    token = result.session.token
    start = utcnow()
    rt.clock = lambda: start + timedelta(minutes=59)
    card_sessions.status(rt, token, client_address=a.LOCAL)  # use restarts the idle timer
    rt.clock = lambda: start + timedelta(minutes=59 + 61)
    with pytest.raises(SessionInvalid, match="expired"):
        card_sessions.status(rt, token, client_address=a.LOCAL)
    maintenance.run_once(rt)
    with rt.db() as s:
        assert s.scalar(select(CardSession)) is None


def test_an_unoffered_inline_factor_keeps_the_right_passcode_counted_as_right(
    rt: Runtime, operator: Actor
) -> None:
    a.open_org(rt, operator)
    h = a.holder(rt, operator)
    engine = Engine(rt)
    result = engine.login(
        a.client(),
        LoginRequest(
            identifier_kind="email",
            identifier=h.email,
            passcode=f.STRONG_PASSCODE,
            second_factor=FactorAnswer(method="carrier-pigeon"),
        ),
    )
    assert result.session is None
    assert result.factor_error is not None
    assert result.factor_error.code == "invalid_input"
    assert _card(rt, h.card.card_id).failed_attempts == 0
    grant = engine.complete_factor(
        a.client(), result.transaction_id, FactorAnswer(method="totp", code=h.code())
    )
    assert grant.card_serial == h.card.serial


def test_one_code_is_tried_against_every_code_factor_and_costs_one_failure(
    rt: Runtime, operator: Actor
) -> None:
    """A code field that takes an authenticator app's code or the paired phone's own: a
    wrong code is one failure however many factors refused it; either right code opens."""
    a.open_org(rt, operator)
    h = a.holder(rt, operator)
    phone = ph.pair(rt, operator, h.card.serial)
    engine = Engine(rt)
    started = a.login(engine, h)
    assert {o.method for o in started.second_factors} >= {"totp", "authenticator"}
    wrong = next(c for c in ("000000", "111111", "222222") if c not in (h.code(), phone.code()))
    with pytest.raises(FactorFailed):
        engine.complete_code(a.client(), started.transaction_id, wrong)
    with rt.db() as s:
        txn = s.get(AuthTransaction, started.transaction_id)
        assert txn is not None
        assert txn.factor_failures == 1
    grant = engine.complete_code(a.client(), started.transaction_id, phone.code())
    assert grant.card_serial == h.card.serial
    again = a.login(engine, h)
    assert engine.complete_code(a.client(), again.transaction_id, h.code()).token
