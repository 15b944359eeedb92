"""Helpers for security-key and HR-card tests: a card holder whose organisation allows
what the test needs, keys registered through the service with the agent's own CTAP2 code
talking to the software authenticator, and sign-ins through the engine."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from cardvault.clients.agent.fido2_key import get_assertion, make_credential
from cardvault.services.cards.views import MethodView
from cardvault.services.directory import registry as directory
from cardvault.services.security_keys import registration as security_key_registration
from cardvault.services.security_keys import signin as security_key_signin
from cardvault.services.signin import sessions as card_sessions
from cardvault.services.signin.engine import Engine, LoginRequest, LoginResult
from cardvault.services.signin.factors import FactorAnswer
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import Association, AuditEvent
from cardvault.web.api.signin import offer_out
from tests.support import auth as a
from tests.support import factories as f
from tests.support.soft_ctap2 import SoftCtap2Device

PIN = "4711"
NO_UV = {"fido2_user_verification_required": False}


def org(rt: Runtime, actor: Actor, code: str = "ORG1", **policy: Any) -> str:
    return f.org(rt, actor, code, networks=["127.0.0.0/8", "::1/128"], policy=policy)


def set_policy(rt: Runtime, actor: Actor, code: str, **changes: Any) -> None:
    directory.update_policy(rt, actor, code, changes)


def origin(rt: Runtime) -> str:
    return rt.settings.rp_origins[0]


def pin_of(device: SoftCtap2Device) -> Any:
    return (lambda: PIN) if device._pin.pin_hash else None


def register(
    rt: Runtime,
    actor: Actor,
    card: f.IssuedFixture,
    device: SoftCtap2Device,
    *,
    org_code: str = "ORG1",
    nickname: str = "Blue key",
    resident: bool = False,
) -> MethodView:
    start = security_key_registration.begin_registration(
        rt, actor, serial=card.serial, org_code=org_code, resident_key=resident
    )
    response = make_credential(
        device, origin=origin(rt), creation_options=start.options, pin=pin_of(device)
    )
    return security_key_registration.complete_registration(
        rt, actor, ceremony_id=start.ceremony_id, response=response, nickname=nickname
    )


def make_credential_for(
    rt: Runtime, device: SoftCtap2Device, options: dict[str, Any]
) -> dict[str, Any]:
    return make_credential(device, origin=origin(rt), creation_options=options, pin=pin_of(device))


def key_answer(rt: Runtime, device: SoftCtap2Device, options: dict[str, Any]) -> dict[str, Any]:
    """The agent's CTAP2 path: what a real key would answer for these options."""
    return get_assertion(device, origin=origin(rt), request_options=options, pin=pin_of(device))


def key_first(
    rt: Runtime, device: SoftCtap2Device, *, org_code: str | None = None
) -> security_key_signin.SignInProof:
    start = security_key_signin.begin(rt, org_code=org_code)
    return security_key_signin.complete(
        rt,
        a.client(),
        ceremony_id=start.ceremony_id,
        response=key_answer(rt, device, start.options),
    )


def login_with_proof(
    engine: Engine, proof: str, *, passcode: str = f.STRONG_PASSCODE, org: str | None = None
) -> LoginResult:
    return engine.login(
        a.client(),
        LoginRequest(
            identifier_kind="fido2",
            identifier=proof,
            passcode=passcode,
            organisation=org,
            second_factor=FactorAnswer(method="fido2", proof=proof, has_proof=True),
        ),
    )


def login_email(engine: Engine, email: str, passcode: str = f.STRONG_PASSCODE) -> LoginResult:
    return engine.login(
        a.client(), LoginRequest(identifier_kind="email", identifier=email, passcode=passcode)
    )


def offer(result: LoginResult, method: str = "fido2") -> dict[str, Any]:
    """The plug-in's offer as a client receives it: the JSON the sign-in API sends."""
    found = next(o for o in result.second_factors if o.method == method)
    return offer_out(found).model_dump(mode="json")


def events(rt: Runtime, action: str) -> list[AuditEvent]:
    with rt.db() as s:
        return list(
            s.scalars(
                select(AuditEvent)
                .where(AuditEvent.action == action)
                .order_by(AuditEvent.occurred_at, AuditEvent.seq)
            )
        )


def association(rt: Runtime, assoc_id: str) -> Association:
    with rt.db() as s:
        row = s.get(Association, assoc_id)
        assert row is not None
        return row


def ra_session(rt: Runtime, actor: Actor, org_code: str = "ORG1") -> str:
    """An RA signed in (passcode + TOTP) with the ra_agent role chosen: the session token."""
    h = a.holder(rt, actor, org_code, forename="Rita")
    directory.grant_role(rt, actor, user_id=h.card.user_id, org_code=org_code, role="ra_agent")
    result = a.login(Engine(rt), h, code=h.code(), purpose="ra")
    assert result.session is not None
    card_sessions.select_role(
        rt, a.client(), result.session.token, org_code=org_code, role="ra_agent"
    )
    return result.session.token
