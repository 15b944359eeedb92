"""The messages of the RA's organisation that could not be delivered (emails, text messages)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from cardvault.services.ra import notifications as ra_notifications
from cardvault.web import ui
from cardvault.web.ra.context import Agent, Rt

router = APIRouter(prefix="/ra/notifications", tags=["vRA Manager"], include_in_schema=False)


@router.get("/failed")
def undelivered(request: Request, rt: Rt, ctx: Agent) -> Response:
    result = ra_notifications.undelivered(rt, ctx)
    return ui.render(request, "ra/undelivered.html", result=result, ctx=ctx)
