"""The device protocol's endpoints for the phone (docs/protocols/device.md).

Pairing is a JWE-sealed request with the pairing token; everything after it is a signed
device request (headers ``X-Cardvault-Device/-Timestamp/-Nonce/-Signature``), sealed too
where a passcode or device secret travels.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from cardvault.crypto.device import unb64url
from cardvault.services.devices import mia, pairing, push_answers, qr_login, registry
from cardvault.services.devices.channel import device_topic
from cardvault.services.devices.requests import DeviceCaller, as_actor
from cardvault.services.rate_limits import check as rate_limits
from cardvault.web.api import device_stream
from cardvault.web.api.device_auth import (
    challenge_caller,
    device_caller,
    sign_in_caller,
    wait_for,
)
from cardvault.web.client_address import actor_for
from cardvault.web.deps import RuntimeDep
from cardvault.web.jose import JOSE_BODY, open_body, sealed
from cardvault.web.rate_limit import Bucket, per_address
from cardvault.web.wire_json import WireObject

router = APIRouter(prefix="/api/v1/device", tags=["device"])
HEARTBEAT_SECONDS = 15.0
Caller = Annotated[DeviceCaller, Depends(device_caller)]
#: the push routes also serve a phone whose card is locked, for the holder's reset
ChallengeCaller = Annotated[DeviceCaller, Depends(challenge_caller)]
#: the routes that open a card session: the signature is their second factor, and counts
SignInCaller = Annotated[DeviceCaller, Depends(sign_in_caller)]
Rt = RuntimeDep


class PairIn(BaseModel):
    token: str = Field(min_length=20, max_length=100)
    passcode: str = Field(min_length=1, max_length=256)
    public_key: str = Field(min_length=40, max_length=400, description="base64url SPKI DER")
    proof: str = Field(min_length=40, max_length=200, description="base64url DER ECDSA")
    name: str = Field(min_length=1, max_length=100)
    platform: str = Field(min_length=1, max_length=40)
    application: Literal["authenticator", "mia"] = "authenticator"
    device_secret: str | None = Field(default=None, max_length=64, description="base64url")


@router.post(
    "/pair",
    openapi_extra=JOSE_BODY,
    response_class=Response,
    dependencies=[per_address(Bucket.PAIRING)],
)
async def pair(request: Request, rt: Rt) -> Response:
    """Pair this phone with the card of the pairing token (passcode typed in the app)."""
    body, rkey = await open_body(request, rt, PairIn)
    await run_in_threadpool(
        rate_limits.check_identifier, rt, Bucket.PAIRING, "pairing code", body.token
    )
    secret = unb64url(body.device_secret, "device secret") if body.device_secret else None
    req = pairing.PairRequest(
        token=body.token,
        passcode=body.passcode,
        public_key=body.public_key,
        proof=body.proof,
        name=body.name,
        platform=body.platform,
        application=body.application,
        device_secret=secret,
    )
    done = await run_in_threadpool(pairing.pair, rt, actor_for(request, rt), req)
    return sealed(
        rkey,
        {
            "device_id": done.device_id,
            "totp": {
                "secret": done.totp_secret,
                "uri": done.totp_uri,
                "algorithm": "SHA1",
                "digits": 6,
                "period": 30,
            },
            "card_serial": done.card_serial,
            "organisation": done.organisation,
            "organisation_name": done.organisation_name,
            "holder_name": done.holder_name,
            "application": done.application,
            "biometric": done.biometric,
        },
    )


class DeviceOut(BaseModel):
    device_id: str
    name: str
    application: str
    status: Literal["active"]


@router.get("")
async def whoami(caller: Caller, rt: Rt) -> DeviceOut:
    """This device as the service sees it (a cheap signed call to check the pairing)."""
    return DeviceOut(
        device_id=caller.device_id,
        name=caller.name,
        application=caller.application,
        status="active",
    )


@router.delete("", status_code=204)
async def unpair(caller: Caller, rt: Rt) -> Response:
    """Remove this device (the holder unpairs the app)."""
    await run_in_threadpool(
        registry.revoke, rt, as_actor(caller), caller.device_id, reason="unpaired on the device"
    )
    return Response(status_code=204)


# --- push challenges --------------------------------------------------------------------------


@router.get("/events")
async def events(caller: ChallengeCaller, rt: Rt) -> StreamingResponse:
    """Server-sent events: challenges for this device as they happen (kept open)."""
    return StreamingResponse(
        device_stream.stream(rt, caller),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


class ChallengesOut(BaseModel):
    challenges: list[WireObject]


@router.get("/challenges")
async def challenges(
    caller: ChallengeCaller, rt: Rt, wait: Annotated[int, Query(ge=0, le=30)] = 0
) -> ChallengesOut:
    """Open challenges now; with ``wait``, a long poll that returns as soon as one arrives."""
    items = await wait_for(
        rt,
        device_topic(caller.device_id),
        lambda: push_answers.pending_for_device(rt, caller),
        bool,
        float(wait),
    )
    return ChallengesOut(challenges=items)


class AnswerIn(BaseModel):
    number: str = Field(default="", max_length=2)
    decision: Literal["approve", "deny", "not_me"]
    signature: str = Field(min_length=40, max_length=200)


@router.post("/challenges/{challenge_id}/answer")
async def answer(
    challenge_id: str, body: AnswerIn, caller: ChallengeCaller, rt: Rt
) -> dict[str, str]:
    """Approve (with the number typed), deny, or "this wasn't me"; signed over all three."""
    ans = push_answers.Answer(
        challenge_id=challenge_id,
        number=body.number,
        decision=body.decision,
        signature=body.signature,
    )
    state = await run_in_threadpool(push_answers.answer, rt, caller, ans)
    return {"challenge_id": challenge_id, "status": state.value}


# --- QR sign-in and the mobile agent ----------------------------------------------------------


class QrInspectIn(BaseModel):
    code: str = Field(min_length=20, max_length=100)


@router.post("/qr-login/inspect")
async def qr_inspect(body: QrInspectIn, caller: Caller, rt: Rt) -> WireObject:
    """Where a scanned sign-in request comes from, to show before the passcode is typed."""
    return await run_in_threadpool(qr_login.describe, rt, caller, body.code)


class QrAnswerIn(BaseModel):
    code: str = Field(min_length=20, max_length=100)
    decision: Literal["approve", "deny"]
    passcode: str | None = Field(default=None, max_length=256)


@router.post("/qr-login", openapi_extra=JOSE_BODY, response_class=Response)
async def qr_answer(request: Request, caller: SignInCaller, rt: Rt) -> Response:
    """Approve a PC's QR sign-in with the passcode typed in the app (or deny it)."""
    body, rkey = await open_body(request, rt, QrAnswerIn)
    result = await run_in_threadpool(
        lambda: qr_login.answer(
            rt, caller, code=body.code, passcode=body.passcode, approve=body.decision == "approve"
        )
    )
    return sealed(rkey, result)


class MiaIn(BaseModel):
    passcode: str | None = Field(default=None, max_length=256)
    device_secret: str | None = Field(default=None, max_length=64, description="base64url")


@router.post("/login", openapi_extra=JOSE_BODY, response_class=Response)
async def mia_login(request: Request, caller: SignInCaller, rt: Rt) -> Response:
    """Mobile identity agent: a card session on this phone (passcode or biometric)."""
    body, rkey = await open_body(request, rt, MiaIn)
    secret = unb64url(body.device_secret, "device secret") if body.device_secret else None
    opened = await run_in_threadpool(
        lambda: mia.login(rt, caller, passcode=body.passcode, device_secret=secret)
    )
    return sealed(rkey, opened.as_dict())
