"""Sign-in for card holders and RA users: passcode + second factor → card session."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from fastapi.types import DecoratedCallable
from pydantic import BaseModel, Field

from cardvault.services.rate_limits import check as rate_limits
from cardvault.services.signin import sessions as card_sessions
from cardvault.services.signin.engine import LoginRequest, LoginResult, SessionGrant
from cardvault.services.signin.factors import (
    CodeOffer,
    FactorAnswer,
    HrCardOffer,
    Offer,
    PushOffer,
    SecurityKeyOffer,
)
from cardvault.services.system.runtime import Actor
from cardvault.web.client_address import actor_for
from cardvault.web.deps import BearerToken, EngineDep, RuntimeDep
from cardvault.web.jose import in_one_trip, jose_openapi
from cardvault.web.rate_limit import Bucket, per_address

router = APIRouter(prefix="/api/v1", tags=["authentication"])


class Identifier(BaseModel):
    kind: Literal["email", "ad_account"] | str = Field(max_length=20)
    value: str = Field(min_length=1, max_length=300)


class SecondFactorIn(BaseModel):
    """A second factor's answer as the clients send it; which fields a method reads is the
    plug-in's business (``FactorAnswer``). Fields of the wrong JSON type are read as absent,
    as the plug-ins always have, so that they refuse the answer with their own words."""

    method: str = Field(max_length=20)
    code: str | None = Field(default=None, max_length=20)
    model_config = {"extra": "allow"}

    def answer(self) -> FactorAnswer:
        extra = self.model_extra or {}
        challenge_id, proof, uid = (extra.get(k) for k in ("challenge_id", "proof", "uid"))
        return FactorAnswer(
            method=self.method,
            code=self.code,
            challenge_id=challenge_id if isinstance(challenge_id, str) else None,
            credential=extra.get("credential"),
            proof=proof if isinstance(proof, str) else None,
            has_proof=proof is not None,  # as before: a null field was no field
            uid=str(uid) if uid else None,
        )


class CodeOfferOut(BaseModel):
    """A one-time code from an authenticator app."""

    method: str
    digits: int


class PushOfferOut(BaseModel):
    """The paired phone: a push with number matching (``push``), or its own code (``totp``)."""

    method: str
    devices: int
    connected: int
    push: bool = True
    totp: bool
    digits: int


class SecurityKeyOfferOut(BaseModel):
    """A security key: the keys' labels and, beside them, the ``navigator.credentials.get``
    options (``publicKey``) as the FIDO2 library made them."""

    method: str
    keys: list[str | None]
    user_verification: bool
    model_config = {"extra": "allow"}


class HrCardOfferOut(BaseModel):
    """The tap of the HR card the sign-in started from."""

    method: str


OfferOut = CodeOfferOut | PushOfferOut | SecurityKeyOfferOut | HrCardOfferOut


class FactorErrorOut(BaseModel):
    code: str
    message: str


def offer_out(offer: Offer) -> OfferOut:
    """The JSON of a plug-in's offer, as the agent, the authenticator and the pages read it."""
    match offer:
        case CodeOffer():
            return CodeOfferOut(method=offer.method, digits=offer.digits)
        case PushOffer():
            return PushOfferOut(
                method=offer.method,
                devices=offer.devices,
                connected=offer.connected,
                totp=offer.totp,
                digits=offer.digits,
            )
        case SecurityKeyOffer():
            return SecurityKeyOfferOut.model_validate(
                {
                    "method": offer.method,
                    "keys": list(offer.keys),
                    "user_verification": offer.user_verification,
                    **offer.options,
                }
            )
        case HrCardOffer():
            return HrCardOfferOut(method=offer.method)


class LoginIn(BaseModel):
    identifier: Identifier
    passcode: str = Field(min_length=1, max_length=256)
    purpose: Literal["holder", "ra"] = "holder"
    organisation: str | None = Field(default=None, max_length=32)
    client_name: str | None = Field(default=None, max_length=100)
    second_factor: SecondFactorIn | None = None


class SessionOut(BaseModel):
    token: str
    expires_at: datetime
    idle_expires_at: datetime
    card_serial: str
    organisation: str
    channel_id: str | None = Field(
        default=None, description="the session channel's kid (DESIGN §3.5): the session id"
    )
    channel_key: str | None = Field(
        default=None,
        description="CK, base64: seal every later request of this session to it (dir, A256GCM)",
    )


class OrganisationOut(BaseModel):
    code: str
    name: str


class LoginOut(BaseModel):
    transaction_id: str
    session_key: str = Field(description="SK, base64; keep it with the session token")
    second_factors: list[OfferOut]
    session: SessionOut | None = None
    factor_error: FactorErrorOut | None = None
    organisations: list[OrganisationOut] = Field(
        default_factory=list,
        description="when not empty, choose one with POST /auth/organisation before the "
        "second factor (an email address names no organisation, and several admit you)",
    )


class OrganisationIn(BaseModel):
    transaction_id: str = Field(max_length=36)
    organisation: str = Field(min_length=1, max_length=32)


class FactorsOut(BaseModel):
    transaction_id: str
    second_factors: list[OfferOut]
    factor_error: FactorErrorOut | None = None


class FactorIn(BaseModel):
    transaction_id: str = Field(max_length=36)
    response: SecondFactorIn


def _session_out(grant: SessionGrant) -> SessionOut:
    return SessionOut(
        token=grant.token,
        expires_at=grant.expires_at,
        idle_expires_at=grant.idle_expires_at,
        card_serial=grant.card_serial,
        organisation=grant.organisation,
        channel_id=grant.session_id or None,
        channel_key=base64.b64encode(grant.channel_key).decode() if grant.channel_key else None,
    )


def _sealed_step(
    path: str, body: type[BaseModel], out: type[BaseModel]
) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """A sign-in step: encrypted both ways (JOSE), rate-limited per client address."""
    return router.post(
        path,
        openapi_extra=jose_openapi(body, out),
        response_class=Response,
        dependencies=[per_address(Bucket.SIGNIN)],
    )


@_sealed_step("/auth/login", LoginIn, LoginOut)
async def login(
    request: Request,
    rt: RuntimeDep,
    eng: EngineDep,
) -> Response:
    """Identifier + passcode (+ optionally the second factor at once). Encrypted both ways."""

    def sign_in(actor: Actor, body: LoginIn) -> LoginOut:
        ident = body.identifier
        rate_limits.check_identifier(rt, Bucket.SIGNIN, ident.kind, ident.value)
        req = LoginRequest(
            identifier_kind=body.identifier.kind,
            identifier=body.identifier.value,
            passcode=body.passcode,
            purpose=body.purpose,
            organisation=body.organisation,
            client_name=body.client_name,
            second_factor=body.second_factor.answer() if body.second_factor else None,
        )
        return _login_out(eng.login(actor, req))

    return await in_one_trip(request, rt, LoginIn, sign_in)


def _factor_error_out(result: LoginResult) -> FactorErrorOut | None:
    error = result.factor_error
    return FactorErrorOut(code=error.code, message=error.message) if error else None


def _login_out(result: LoginResult) -> LoginOut:
    return LoginOut(
        transaction_id=result.transaction_id,
        session_key=base64.b64encode(result.session_key).decode(),
        second_factors=[offer_out(o) for o in result.second_factors],
        session=_session_out(result.session) if result.session else None,
        factor_error=_factor_error_out(result),
        organisations=[OrganisationOut(code=o.code, name=o.name) for o in result.organisations],
    )


@_sealed_step("/auth/organisation", OrganisationIn, FactorsOut)
async def organisation(
    request: Request,
    rt: RuntimeDep,
    eng: EngineDep,
) -> Response:
    """Choose the organisation of a sign-in that lists several; answers its second factors."""

    def choose(actor: Actor, body: OrganisationIn) -> FactorsOut:
        result = eng.choose_organisation(actor, body.transaction_id, body.organisation)
        return FactorsOut(
            transaction_id=result.transaction_id,
            second_factors=[offer_out(o) for o in result.second_factors],
            factor_error=_factor_error_out(result),
        )

    return await in_one_trip(request, rt, OrganisationIn, choose)


@_sealed_step("/auth/factor", FactorIn, SessionOut)
async def factor(
    request: Request,
    rt: RuntimeDep,
    eng: EngineDep,
) -> Response:
    """Complete the second factor of a sign-in; opens the card session."""

    def complete(actor: Actor, body: FactorIn) -> SessionOut:
        grant = eng.complete_factor(actor, body.transaction_id, body.response.answer())
        return _session_out(grant)

    return await in_one_trip(request, rt, FactorIn, complete)


class SessionStatus(BaseModel):
    card_serial: str
    status: str
    purpose: str
    method: str
    organisation: str
    acting_organisation: str | None
    acting_role: str | None
    expires_at: datetime
    idle_expires_at: datetime


@router.get("/session", response_model=SessionStatus)
def session_status(
    request: Request,
    rt: RuntimeDep,
    token: BearerToken,
) -> SessionStatus:
    """The current card session (and restart its idle timer)."""
    info = card_sessions.status(rt, token, client_address=actor_for(request, rt).client_address)
    return SessionStatus(**info)


@router.delete("/session", status_code=204)
def logout(
    request: Request,
    rt: RuntimeDep,
    token: BearerToken,
) -> Response:
    """End the card session: its key wrap is deleted."""
    card_sessions.logout(rt, actor_for(request, rt), token)
    return Response(status_code=204)
