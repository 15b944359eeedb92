"""The expiry report: the organisation's cards whose certificates expire soon (DESIGN §3.9)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from cardvault.services.ra import certificates as ra_certificates
from cardvault.web import ui
from cardvault.web.ra.context import Agent, Rt

router = APIRouter(prefix="/ra/expiring", tags=["vRA Manager"], include_in_schema=False)


@router.get("")
def expiring(request: Request, rt: Rt, ctx: Agent) -> Response:
    report = ra_certificates.expiring(rt, ctx)
    return ui.render(request, "ra/expiring.html", report=report, ctx=ctx)
