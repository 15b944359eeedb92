"""The RA API: choose a role, then issue, show and revoke cards in that organisation."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from cardvault.services.ra import actions as ra_actions
from cardvault.services.ra import cards as ra_cards
from cardvault.services.signin import sessions as card_sessions
from cardvault.services.system.runtime import Runtime
from cardvault.web.api.ra_gate import Agent, Viewer
from cardvault.web.client_address import actor_for
from cardvault.web.deps import BearerToken, RuntimeDep
from cardvault.web.jose import JOSE_BODY, open_body, sealed
from cardvault.web.wire_json import WireObject

router = APIRouter(prefix="/api/v1/ra", tags=["ra"])


class RoleIn(BaseModel):
    organisation: str = Field(max_length=32)
    role: str = Field(max_length=20)


class IssueIn(BaseModel):
    token: str = Field(max_length=200)
    user_id: str = Field(max_length=20)
    issuance_passcode: str = Field(min_length=1, max_length=256)
    key_algorithm: str | None = Field(default=None, max_length=10)


class RevokeIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


def _address(request: Request, rt: Runtime) -> str | None:
    return actor_for(request, rt).client_address


@router.get("/roles")
def list_roles(
    request: Request,
    rt: RuntimeDep,
    token: BearerToken,
) -> list[dict[str, str]]:
    """The RA roles of the signed-in RA user."""
    return ra_actions.roles(rt, token, _address(request, rt))


@router.post("/role")
def choose_role(
    body: RoleIn,
    request: Request,
    rt: RuntimeDep,
    token: BearerToken,
) -> dict[str, str]:
    """Act in one organisation under one of your roles there."""
    card_sessions.select_role(
        rt, actor_for(request, rt), token, org_code=body.organisation, role=body.role
    )
    return {"organisation": body.organisation.upper(), "role": body.role}


@router.post("/cards", openapi_extra=JOSE_BODY, response_class=Response)
async def issue_card(request: Request, rt: RuntimeDep) -> Response:
    """Issue a card for a person of your organisation (the issuance passcode is encrypted)."""
    body, rkey = await open_body(request, rt, IssueIn)
    ctx = ra_actions.context(rt, body.token, _address(request, rt), ra_actions.ISSUERS)
    card = await run_in_threadpool(
        ra_cards.issue,
        rt,
        ctx,
        body.user_id,
        issuance_passcode=body.issuance_passcode,
        confirm=body.issuance_passcode,
        key_algorithm=body.key_algorithm,
    )
    return sealed(
        rkey,
        {
            "serial": card.serial,
            "status": card.status,
            "key_algorithm": card.key_algorithm,
            "certificates": card.certificates,
        },
    )


@router.get("/cards/{serial}")
def show_card(serial: str, rt: RuntimeDep, ctx: Viewer) -> WireObject:
    """A card of your organisation (404 for any other)."""
    shown = ra_actions.show(rt, ctx, serial).as_json()
    return {key: shown[key] for key in ("card", "holder", "certificates", "associations")}


@router.post("/cards/{serial}/revoke")
def revoke_card(serial: str, body: RevokeIn, rt: RuntimeDep, ctx: Agent) -> dict[str, str]:
    """Revoke a card of your organisation: its keys are destroyed."""
    return {"serial": serial.upper(), "status": ra_actions.revoke(rt, ctx, serial, body.reason)}
