"""The PC's side of the device protocol: ask for a push and wait for the phone's answer;
start a QR sign-in and collect its result. RA endpoints for pairing and device removal."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from cardvault.domain.push_policy import PushStatus
from cardvault.services.devices import pairing, push, qr_login, registry
from cardvault.services.devices.channel import challenge_topic, qr_topic
from cardvault.web.api.device_auth import wait_for
from cardvault.web.api.ra_gate import Agent
from cardvault.web.client_address import actor_for
from cardvault.web.deps import RuntimeDep
from cardvault.web.rate_limit import Bucket, per_address
from cardvault.web.wire_json import WireObject

router = APIRouter(prefix="/api/v1", tags=["push"])
Rt = RuntimeDep
Wait = Annotated[int, Query(ge=0, le=30, description="seconds to wait for a change")]


class PushIn(BaseModel):
    transaction_id: str = Field(min_length=36, max_length=36)


class PushOut(BaseModel):
    challenge_id: str
    number: str = Field(description="the two digits to show on the PC")
    expires_at: str
    devices: int
    connected: int


@router.post("/auth/push", dependencies=[per_address(Bucket.SIGNIN)])
async def start_push(body: PushIn, request: Request, rt: Rt) -> PushOut:
    """Send a push to the card's phones; show ``number`` on the PC and wait for the answer."""
    started = await run_in_threadpool(push.start, rt, actor_for(request, rt), body.transaction_id)
    return PushOut(
        challenge_id=started.challenge_id,
        number=f"{started.number:02d}",
        expires_at=started.expires_at.isoformat(),
        devices=started.devices,
        connected=started.connected,
    )


@router.get("/auth/push/{challenge_id}", dependencies=[per_address(Bucket.POLL)])
async def push_status(
    challenge_id: str,
    rt: Rt,
    transaction_id: Annotated[str, Query(min_length=36, max_length=36)],
    wait: Wait = 0,
) -> dict[str, str]:
    """The challenge's status; with ``wait``, returns as soon as the phone answers."""
    state = await wait_for(
        rt,
        challenge_topic(challenge_id),
        lambda: push.status(rt, challenge_id, transaction_id),
        lambda s: s is not PushStatus.PENDING,
        float(wait),
    )
    return {"challenge_id": challenge_id, "status": state.value}


class QrIn(BaseModel):
    public_key: WireObject = Field(description="the PC's ephemeral P-256 public JWK")
    client_name: str | None = Field(default=None, max_length=100)


@router.post("/auth/qr", dependencies=[per_address(Bucket.SIGNIN)])
async def start_qr(body: QrIn, request: Request, rt: Rt) -> WireObject:
    """A QR sign-in request: show ``uri`` as a QR code, then poll for the result."""
    return await run_in_threadpool(
        lambda: qr_login.start(
            rt, actor_for(request, rt), public_jwk=body.public_key, client_name=body.client_name
        )
    )


@router.get("/auth/qr/{request_id}", dependencies=[per_address(Bucket.POLL)])
async def qr_status(request_id: str, rt: Rt, wait: Wait = 0) -> WireObject:
    """pending, approved (with ``result``: a JWE only the PC's key opens), denied, expired."""
    qr_login.check_request_id(request_id)
    return await wait_for(
        rt,
        qr_topic(request_id),
        lambda: qr_login.poll(rt, request_id),
        lambda s: s["status"] != "pending",
        float(wait),
    )


# --- RA: pairing codes and devices ------------------------------------------------------------


class PairingIn(BaseModel):
    minutes: int | None = Field(default=None, ge=1, le=24 * 60)


@router.post("/ra/cards/{serial}/pairing", tags=["ra"])
def create_pairing(
    serial: str,
    body: PairingIn,
    rt: Rt,
    ctx: Agent,
) -> Response:
    """A single-use pairing code for the card, as the URI to show as a QR code."""
    inv = pairing.create_pairing(
        rt, ctx.actor, serial=serial, org_code=ctx.organisation_code, minutes=body.minutes
    )
    return Response(
        json.dumps(
            {
                "uri": inv.uri,
                "card_serial": inv.card_serial,
                "organisation": inv.organisation,
                "expires_at": inv.expires_at.isoformat(),
            }
        ),
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


@router.get("/ra/cards/{serial}/devices", tags=["ra"])
def list_devices(serial: str, rt: Rt, ctx: Agent) -> list[WireObject]:
    """The card's paired devices in your organisation."""
    return registry.list_devices(rt, serial, organisation_id=ctx.organisation_id)


class RevokeDeviceIn(BaseModel):
    reason: str = Field(default="removed by the RA", min_length=1, max_length=300)


@router.post("/ra/devices/{device_id}/revoke", tags=["ra"])
def revoke_device(
    device_id: str,
    body: RevokeDeviceIn,
    rt: Rt,
    ctx: Agent,
) -> WireObject:
    """Revoke a device now (its event stream closes, its biometric slot is deleted)."""
    return registry.revoke(
        rt, ctx.actor, device_id, organisation_id=ctx.organisation_id, reason=body.reason
    )
