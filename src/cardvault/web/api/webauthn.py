"""Security keys in the browser (WebAuthn): the JSON the page's script exchanges with us.

* ``/api/v1/webauthn/assertion/begin|complete``: sign-in that starts from a key (no
  identifier typed); the answer is a short-lived proof that the passcode step spends
  (``/api/v1/auth/login`` with identifier kind ``fido2``).
* ``/api/v1/webauthn/registration/begin|complete``: an RA (session token, role chosen)
  registers a holder's key for a card of their organisation.

Options and responses are WebAuthn's own JSON forms (``PublicKeyCredential.toJSON()``),
so the page needs no encoding of its own beyond base64url. No secrets travel here: the
passcode goes through the encrypted sign-in API.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from cardvault.services.cards import methods
from cardvault.services.security_keys import keys as security_keys
from cardvault.services.security_keys import registration as security_key_registration
from cardvault.services.security_keys import signin as security_key_signin
from cardvault.web.api.ra_gate import Agent
from cardvault.web.client_address import actor_for
from cardvault.web.deps import RuntimeDep
from cardvault.web.rate_limit import Bucket, per_address
from cardvault.web.wire_json import WireObject

router = APIRouter(prefix="/api/v1/webauthn", tags=["security keys"])
NO_STORE = {"Cache-Control": "no-store"}


class AssertionBeginIn(BaseModel):
    organisation: str | None = Field(default=None, max_length=32)


class CeremonyOut(BaseModel):
    ceremony_id: str
    publicKey: WireObject  # noqa: N815 -- WebAuthn's own name for the options
    expires_at: datetime


class AssertionCompleteIn(BaseModel):
    ceremony_id: str = Field(max_length=36)
    credential: WireObject


class ProofOut(BaseModel):
    proof: str = Field(description="spend it on /api/v1/auth/login, identifier kind fido2")
    expires_at: datetime
    organisation: str
    organisation_name: str
    key_nickname: str


class RegistrationBeginIn(BaseModel):
    serial: str = Field(max_length=20)
    resident_key: bool = Field(
        default=False, description="store a discoverable credential: sign-in without email"
    )


class RegistrationCompleteIn(BaseModel):
    ceremony_id: str = Field(max_length=36)
    nickname: str = Field(min_length=1, max_length=64)
    credential: WireObject


def _ceremony(start: security_keys.CeremonyStart) -> JSONResponse:
    out = CeremonyOut(
        ceremony_id=start.ceremony_id,
        publicKey=start.options["publicKey"],
        expires_at=start.expires_at,
    )
    return JSONResponse(out.model_dump(mode="json"), headers=NO_STORE)


@router.post(
    "/assertion/begin",
    response_model=CeremonyOut,
    dependencies=[per_address(Bucket.SIGNIN)],
)
def assertion_begin(body: AssertionBeginIn, rt: RuntimeDep) -> Any:
    """Options for ``navigator.credentials.get`` asking for a discoverable credential."""
    return _ceremony(security_key_signin.begin(rt, org_code=body.organisation))


@router.post(
    "/assertion/complete",
    response_model=ProofOut,
    dependencies=[per_address(Bucket.SIGNIN)],
)
async def assertion_complete(body: AssertionCompleteIn, request: Request, rt: RuntimeDep) -> Any:
    """Verify the key's answer; the proof then goes with the passcode to sign in."""
    proof = await run_in_threadpool(
        security_key_signin.complete,
        rt,
        actor_for(request, rt),
        ceremony_id=body.ceremony_id,
        response=body.credential,
    )
    out = ProofOut(
        proof=proof.proof,
        expires_at=proof.expires_at,
        organisation=proof.organisation,
        organisation_name=proof.organisation_name,
        key_nickname=proof.nickname,
    )
    return JSONResponse(out.model_dump(mode="json"), headers=NO_STORE)


@router.post("/registration/begin", response_model=CeremonyOut)
def registration_begin(
    body: RegistrationBeginIn,
    rt: RuntimeDep,
    ctx: Agent,
) -> Any:
    """Options for ``navigator.credentials.create`` for a card of the RA's organisation."""
    start = security_key_registration.begin_registration(
        rt,
        ctx.actor,
        serial=body.serial,
        org_code=ctx.organisation_code,
        resident_key=body.resident_key,
    )
    return _ceremony(start)


@router.post("/registration/complete")
def registration_complete(
    body: RegistrationCompleteIn,
    rt: RuntimeDep,
    ctx: Agent,
) -> WireObject:
    """Verify the new credential and associate it with the card (audited)."""
    assoc = security_key_registration.complete_registration(
        rt,
        ctx.actor,
        ceremony_id=body.ceremony_id,
        response=body.credential,
        nickname=body.nickname,
    )
    return {
        **methods.association_dict(assoc),
        "aaguid": assoc.aaguid,
        "authenticator": assoc.authenticator,
        "resident_key": assoc.resident_key,
    }
