"""FIDO2 security keys through the service, on SQLite and PostgreSQL: registration, the
two sign-in paths (passcode then key; key then passcode), and every refusal audited with
nothing else changed. The key is the software CTAP2 authenticator driven by the agent's
own CTAP2 code."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from tests.support import auth as a
from tests.support import factories as f
from tests.support import keys as k
from tests.support.soft_ctap2 import SOFT_AAGUID, SoftCtap2Device

from cardvault.clients.agent.fido2_key import (
    SecurityKeyAlreadyRegistered,
    get_assertion,
    make_credential,
)
from cardvault.domain import webauthn
from cardvault.services.cards import methods
from cardvault.services.directory import registry as directory
from cardvault.services.networks.errors import NetworkNotAllowed
from cardvault.services.security_keys import keys as security_keys
from cardvault.services.security_keys import registration as security_key_registration
from cardvault.services.security_keys import signin as security_key_signin
from cardvault.services.security_keys.errors import SecurityKeysNotAllowed
from cardvault.services.signin.engine import Engine
from cardvault.services.signin.errors import FactorFailed, SignInFailed
from cardvault.services.signin.factors import FactorAnswer
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import Association, CardSession, Notification, WebAuthnCeremony

SOFT = str(uuid.UUID(bytes=SOFT_AAGUID))
OTHER_MODEL = "cb69481e-8ff7-4039-93ec-0a2729a154a8"


@pytest.fixture
def engine(rt: Runtime) -> Engine:
    return Engine(rt)


def _sessions(rt: Runtime) -> int:
    with rt.db() as s:
        return int(s.scalar(select(func.count()).select_from(CardSession)) or 0)


# --- registration ----------------------------------------------------------------------


def test_a_registered_key_is_an_association_with_nickname_and_model(
    rt: Runtime, operator: Actor
) -> None:
    k.org(rt, operator)
    card = f.active_card(rt, operator)

    assoc = k.register(rt, operator, card, SoftCtap2Device(pin=k.PIN), nickname="Ward 7 key")

    assert (assoc.method, assoc.label, k.association(rt, assoc.id).counter) == (
        "fido2",
        "Ward 7 key",
        1,
    )
    assert assoc.aaguid == SOFT
    assert assoc.authenticator == "Security key"
    assert len(assoc.lookup_key) == 64
    added = k.events(rt, "method.added")[-1]
    assert added.details["nickname"] == "Ward 7 key"
    assert added.details["aaguid"] == SOFT


def test_registering_the_same_key_twice_is_refused_and_audited(
    rt: Runtime, operator: Actor
) -> None:
    k.org(rt, operator, **k.NO_UV)
    card = f.active_card(rt, operator)
    device = SoftCtap2Device()
    k.register(rt, operator, card, device)
    start = security_key_registration.begin_registration(
        rt, operator, serial=card.serial, org_code="ORG1"
    )

    assert start.options["publicKey"]["excludeCredentials"]

    with pytest.raises(SecurityKeyAlreadyRegistered):
        make_credential(device, origin=k.origin(rt), creation_options=start.options)


def test_a_model_outside_the_allow_list_cannot_be_registered(rt: Runtime, operator: Actor) -> None:
    k.org(rt, operator, fido2_allowed_aaguids=[OTHER_MODEL])
    card = f.active_card(rt, operator)

    with pytest.raises(webauthn.AuthenticatorNotAllowed):
        k.register(rt, operator, card, SoftCtap2Device(pin=k.PIN))

    with rt.db() as s:
        assert s.scalar(select(Association).where(Association.method == "fido2")) is None
    refused = k.events(rt, "method.fido2_registration")[-1]
    assert refused.outcome == "failure"
    assert refused.details["code"] == "webauthn_authenticator_not_allowed"


def test_only_who_began_a_registration_may_complete_it(rt: Runtime, operator: Actor) -> None:
    k.org(rt, operator, **k.NO_UV)
    card = f.active_card(rt, operator)
    start = security_key_registration.begin_registration(
        rt, operator, serial=card.serial, org_code="ORG1"
    )
    response = k.make_credential_for(rt, SoftCtap2Device(), start.options)

    with pytest.raises(webauthn.InvalidState):
        security_key_registration.complete_registration(
            rt, Actor.operator("someone-else"), ceremony_id=start.ceremony_id,
            response=response, nickname="x",
        )  # fmt: skip
    assoc = security_key_registration.complete_registration(
        rt, operator, ceremony_id=start.ceremony_id, response=response, nickname="mine"
    )
    assert assoc.label == "mine"


def test_an_organisation_without_security_keys_refuses_registration(
    rt: Runtime, operator: Actor
) -> None:
    k.org(rt, operator, allowed_methods=["email", "ad_account"])
    card = f.active_card(rt, operator)

    with pytest.raises(SecurityKeysNotAllowed):
        security_key_registration.begin_registration(
            rt, operator, serial=card.serial, org_code="ORG1"
        )


# --- passcode first, then the key -----------------------------------------------------


def test_email_and_passcode_then_the_key_open_a_session(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    k.org(rt, operator)
    h = a.holder(rt, operator)
    device = SoftCtap2Device(pin=k.PIN)
    assoc = k.register(rt, operator, h.card, device)

    first = k.login_email(engine, h.email)
    offer = k.offer(first)
    assert offer["keys"] == ["Blue key"]
    assert offer["publicKey"]["userVerification"] == "required"
    again = k.login_email(engine, h.email)
    assert k.offer(again)["publicKey"]["challenge"] != offer["publicKey"]["challenge"]

    grant = engine.complete_factor(
        a.client(),
        first.transaction_id,
        FactorAnswer(method="fido2", credential=k.key_answer(rt, device, offer)),
    )

    assert grant.card_serial == h.card.serial
    used = k.events(rt, "auth.second_factor")[-1]
    assert k.association(rt, assoc.id).counter == used.details["sign_count"] > 1
    assert used.outcome == "success"
    assert used.details["nickname"] == "Blue key"
    assert used.details["user_verified"] is True


def test_the_factor_challenge_stays_the_same_until_it_is_answered(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    k.org(rt, operator, **k.NO_UV)
    h = a.holder(rt, operator)
    device = SoftCtap2Device()
    k.register(rt, operator, h.card, device)
    first = k.login_email(engine, h.email)
    answer = k.key_answer(rt, device, k.offer(first))

    grant = engine.complete_factor(
        a.client(), first.transaction_id, FactorAnswer(method="fido2", credential=answer)
    )
    assert grant.card_serial == h.card.serial


def test_a_replayed_assertion_is_refused(rt: Runtime, operator: Actor, engine: Engine) -> None:
    k.org(rt, operator, **k.NO_UV)
    h = a.holder(rt, operator)
    device = SoftCtap2Device()
    assoc = k.register(rt, operator, h.card, device)
    first = k.login_email(engine, h.email)
    answer = k.key_answer(rt, device, k.offer(first))
    second = k.login_email(engine, h.email)

    with pytest.raises(FactorFailed) as caught:
        engine.complete_factor(
            a.client(), second.transaction_id, FactorAnswer(method="fido2", credential=answer)
        )
    assert caught.value.code == "webauthn_challenge_mismatch"
    engine.complete_factor(
        a.client(), first.transaction_id, FactorAnswer(method="fido2", credential=answer)
    )
    counter = k.association(rt, assoc.id).counter
    with pytest.raises(FactorFailed):  # the second transaction's challenge is used up
        engine.complete_factor(
            a.client(), second.transaction_id, FactorAnswer(method="fido2", credential=answer)
        )
    assert k.association(rt, assoc.id).counter == counter
    assert _sessions(rt) == 1


def test_user_verification_missing_when_required_is_refused(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    k.org(rt, operator)
    h = a.holder(rt, operator)
    device = SoftCtap2Device(pin=k.PIN)
    assoc = k.register(rt, operator, h.card, device)
    first = k.login_email(engine, h.email)
    tampered = k.offer(first)
    tampered["publicKey"] = {**tampered["publicKey"], "userVerification": "discouraged"}
    answer = k.key_answer(rt, device, tampered)  # the client skips the PIN it was not asked for

    with pytest.raises(FactorFailed) as caught:
        engine.complete_factor(
            a.client(), first.transaction_id, FactorAnswer(method="fido2", credential=answer)
        )

    assert caught.value.code == "webauthn_user_verification_missing"
    assert "PIN" in caught.value.message
    assert k.association(rt, assoc.id).counter == 1
    assert _sessions(rt) == 0
    assert k.events(rt, "auth.second_factor")[-1].outcome == "failure"


def test_a_key_whose_counter_goes_back_is_refused_as_a_possible_clone(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    k.org(rt, operator, **k.NO_UV)
    h = a.holder(rt, operator)
    device = SoftCtap2Device()
    assoc = k.register(rt, operator, h.card, device)
    twin = device.clone()  # the copy restarts its counters
    first = k.login_email(engine, h.email)
    engine.complete_factor(
        a.client(),
        first.transaction_id,
        FactorAnswer(method="fido2", credential=k.key_answer(rt, device, k.offer(first))),
    )
    stored = k.association(rt, assoc.id).counter
    second = k.login_email(engine, h.email)

    with pytest.raises(FactorFailed) as caught:
        engine.complete_factor(
            a.client(),
            second.transaction_id,
            FactorAnswer(method="fido2", credential=k.key_answer(rt, twin, k.offer(second))),
        )

    assert caught.value.code == "webauthn_sign_counter_regression"
    assert "cloned" in caught.value.message
    assert k.association(rt, assoc.id).counter == stored
    clone = k.events(rt, "fido2.clone_suspected")[-1]
    assert clone.details["nickname"] == "Blue key"
    assert clone.details["stored_counter"] == stored
    assert clone.card_id == h.card.card_id
    assert _sessions(rt) == 1


def test_a_key_no_longer_allowed_by_policy_is_refused(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    k.org(rt, operator, **k.NO_UV)
    h = a.holder(rt, operator)
    device = SoftCtap2Device()
    k.register(rt, operator, h.card, device)
    k.set_policy(rt, operator, "ORG1", fido2_allowed_aaguids=[OTHER_MODEL])
    first = k.login_email(engine, h.email)

    with pytest.raises(FactorFailed) as caught:
        engine.complete_factor(
            a.client(),
            first.transaction_id,
            FactorAnswer(method="fido2", credential=k.key_answer(rt, device, k.offer(first))),
        )
    assert caught.value.code == "webauthn_authenticator_not_allowed"


def test_security_keys_are_not_offered_where_the_policy_forbids_them(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    k.org(rt, operator, **k.NO_UV)
    h = a.holder(rt, operator)
    k.register(rt, operator, h.card, SoftCtap2Device())
    k.set_policy(rt, operator, "ORG1", allowed_methods=["email", "ad_account"])

    first = k.login_email(engine, h.email)

    assert [o.method for o in first.second_factors] == ["totp"]


# --- the key first, then the passcode -------------------------------------------------


def test_a_discoverable_key_then_the_passcode_open_a_session(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    k.org(rt, operator)
    card = f.active_card(rt, operator)
    device = SoftCtap2Device(pin=k.PIN)
    k.register(rt, operator, card, device, resident=True, nickname="Green key")

    proof = k.key_first(rt, device)
    assert (proof.organisation, proof.nickname) == ("ORG1", "Green key")
    result = k.login_with_proof(engine, proof.proof)

    assert result.session is not None
    assert result.session.card_serial == card.serial
    signed = k.events(rt, "fido2.sign_in")[-1]
    assert signed.details["nickname"] == "Green key"
    assert signed.details["user_verified"] is True
    opened = k.events(rt, "session.opened")[-1]
    assert opened.details["method"] == "fido2+fido2"
    with rt.db() as s:
        row = s.scalar(select(WebAuthnCeremony).where(WebAuthnCeremony.status == "consumed"))
        assert row is not None
        assert row.proof_hash != proof.proof


def test_a_proof_is_spent_once(rt: Runtime, operator: Actor, engine: Engine) -> None:
    k.org(rt, operator, **k.NO_UV)
    card = f.active_card(rt, operator)
    device = SoftCtap2Device()
    k.register(rt, operator, card, device, resident=True)
    proof = k.key_first(rt, device, org_code="ORG1")
    assert k.login_with_proof(engine, proof.proof).session is not None

    with pytest.raises(SignInFailed):
        k.login_with_proof(engine, proof.proof)
    assert _sessions(rt) == 1


def test_a_wrong_passcode_keeps_the_proof_for_a_retry_and_counts_against_the_card(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    k.org(rt, operator, **k.NO_UV)
    card = f.active_card(rt, operator)
    device = SoftCtap2Device()
    k.register(rt, operator, card, device, resident=True)
    proof = k.key_first(rt, device, org_code="ORG1")

    with pytest.raises(SignInFailed):
        k.login_with_proof(engine, proof.proof, passcode="not my passcode at all")

    assert k.login_with_proof(engine, proof.proof).session is not None


def test_an_expired_proof_does_not_sign_in(rt: Runtime, operator: Actor, engine: Engine) -> None:
    k.org(rt, operator, **k.NO_UV)
    card = f.active_card(rt, operator)
    device = SoftCtap2Device()
    k.register(rt, operator, card, device, resident=True)
    proof = k.key_first(rt, device, org_code="ORG1")
    later = rt.clock() + timedelta(minutes=security_key_signin.PROOF_MINUTES + 1)
    rt.clock = lambda: later

    result = k.login_with_proof(engine, proof.proof)

    assert result.session is None
    assert result.factor_error is not None
    assert result.factor_error.code == "fido2_proof_invalid"
    assert _sessions(rt) == 0


def test_the_same_answer_twice_is_a_replay_and_audited(rt: Runtime, operator: Actor) -> None:
    k.org(rt, operator, **k.NO_UV)
    card = f.active_card(rt, operator)
    device = SoftCtap2Device()
    assoc = k.register(rt, operator, card, device, resident=True)
    start = security_key_signin.begin(rt, org_code="ORG1")
    answer = k.key_answer(rt, device, start.options)
    security_key_signin.complete(rt, a.client(), ceremony_id=start.ceremony_id, response=answer)
    counter = k.association(rt, assoc.id).counter

    with pytest.raises(webauthn.StateReplayed):
        security_key_signin.complete(rt, a.client(), ceremony_id=start.ceremony_id, response=answer)

    assert k.association(rt, assoc.id).counter == counter
    refused = k.events(rt, "fido2.sign_in")[-1]
    assert (refused.outcome, refused.details["code"]) == ("failure", "webauthn_state_replayed")


def test_an_unknown_key_is_refused_and_audited(rt: Runtime, operator: Actor) -> None:
    k.org(rt, operator, **k.NO_UV)
    stranger = SoftCtap2Device()
    policy = dataclasses.replace(
        security_keys.policy_for(rt.settings, None), user_verification_required=False
    )
    options, _state = webauthn.begin_registration(  # a credential the service never stored
        policy,
        user_handle=b"someone",
        user_name="someone",
        display_name="Someone",
        existing=(),
        resident_key=True,
    )
    k.make_credential_for(rt, stranger, options)

    with pytest.raises(webauthn.UnknownCredential) as caught:
        k.key_first(rt, stranger, org_code="ORG1")

    assert "not registered" in caught.value.message
    refused = k.events(rt, "fido2.sign_in")[-1]
    assert refused.details["code"] == "webauthn_unknown_credential"
    assert refused.card_id is None


def test_a_wrong_origin_is_refused(rt: Runtime, operator: Actor) -> None:
    k.org(rt, operator, **k.NO_UV)
    card = f.active_card(rt, operator)
    device = SoftCtap2Device()
    assoc = k.register(rt, operator, card, device, resident=True)
    start = security_key_signin.begin(rt, org_code="ORG1")

    answer = get_assertion(  # a look-alike site under the same domain
        device, origin="https://evil.localhost:8443", request_options=start.options
    )
    with pytest.raises(webauthn.OriginMismatch):
        security_key_signin.complete(rt, a.client(), ceremony_id=start.ceremony_id, response=answer)
    assert k.association(rt, assoc.id).counter == 1
    assert k.events(rt, "fido2.sign_in")[-1].details["code"] == "webauthn_origin_mismatch"


def test_a_key_first_sign_in_from_outside_the_networks_is_refused(
    rt: Runtime, operator: Actor
) -> None:
    f.org(rt, operator, "ORG1", networks=["10.0.0.0/8"], policy=k.NO_UV)
    card = f.active_card(rt, operator)
    device = SoftCtap2Device()
    k.register(rt, operator, card, device, resident=True)

    with pytest.raises(NetworkNotAllowed):
        k.key_first(rt, device, org_code="ORG1")
    assert k.events(rt, "fido2.sign_in")[-1].outcome == "failure"


def test_a_key_registered_in_two_organisations_signs_in_where_it_is_asked(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    k.org(rt, operator, "ORG1", **k.NO_UV)
    k.org(rt, operator, "ORG2", **k.NO_UV)
    card = f.active_card(rt, operator)
    directory.add_membership(rt, operator, card.user_id, "ORG2")
    device = SoftCtap2Device()
    k.register(rt, operator, card, device, org_code="ORG1", resident=True)
    k.register(rt, operator, card, device, org_code="ORG2", resident=True)

    proof = k.key_first(rt, device, org_code="ORG2")

    assert proof.organisation == "ORG2"
    result = k.login_with_proof(engine, proof.proof, org="ORG2")
    assert result.session is not None
    assert result.session.organisation == "ORG2"


def test_an_expired_request_is_refused_and_then_forgotten(rt: Runtime, operator: Actor) -> None:
    k.org(rt, operator, **k.NO_UV)
    card = f.active_card(rt, operator)
    device = SoftCtap2Device()
    k.register(rt, operator, card, device, resident=True)
    start = security_key_signin.begin(rt, org_code="ORG1")
    answer = k.key_answer(rt, device, start.options)
    later = start.expires_at + timedelta(seconds=1)
    rt.clock = lambda: later

    with pytest.raises(webauthn.InvalidState) as caught:
        security_key_signin.complete(rt, a.client(), ceremony_id=start.ceremony_id, response=answer)
    assert "expired" in caught.value.message

    security_key_signin.begin(rt, org_code="ORG1")
    with rt.db() as s:
        assert s.get(WebAuthnCeremony, start.ceremony_id) is None


def test_the_holder_is_told_when_a_key_is_added_and_removed(rt: Runtime, operator: Actor) -> None:
    k.org(rt, operator, **k.NO_UV)
    h = a.holder(rt, operator)
    assoc = k.register(rt, operator, h.card, SoftCtap2Device(), nickname="Desk key")
    methods.remove_method(rt, operator, assoc.id)

    with rt.db() as s:
        sent = s.execute(
            select(Notification.template, Notification.recipient, Notification.context)
            .where(Notification.card_id == h.card.card_id)
            .order_by(Notification.created_at)
        ).all()
    templates = [(t, r) for t, r, _ in sent if t.startswith("fido2")]
    assert templates == [("fido2_key_added", h.email), ("fido2_key_removed", h.email)]
    assert all(c["key_name"] == "Desk key" for t, _, c in sent if t.startswith("fido2"))
