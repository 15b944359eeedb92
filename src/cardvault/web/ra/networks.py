"""The organisation's client networks, for its RA manager: see them, change them (DESIGN §3.6).

A sensitive action: a recent sign-in is required (re-authentication), the form is sent once,
and a list that opens the organisation to the internet or leaves the RA manager's own
address outside needs an explicit confirmation, asked for on the page itself.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from cardvault.domain.networks import EverywhereNeedsConfirmation
from cardvault.errors import CardvaultError
from cardvault.services.ra import networks as ra_networks
from cardvault.services.ra.actions import RaContext
from cardvault.services.ra.errors import WouldLockOut
from cardvault.services.signin.web_sessions import WebSessionView
from cardvault.services.system.runtime import Runtime
from cardvault.web import ui
from cardvault.web.errors import status_of
from cardvault.web.ra.context import Manager, Rt, View, require_recent_sign_in
from cardvault.web.ra.persons import already_sent

router = APIRouter(prefix="/ra/organisation", tags=["vRA Manager"], include_in_schema=False)
PATH = "/ra/organisation/networks"
#: where a service error goes on the page: the confirmation it asks for, or the list
FIELDS = {
    EverywhereNeedsConfirmation.code: "allow_everywhere",
    WouldLockOut.code: "confirm_lock_out",
}


@router.get("/networks")
def networks_page(request: Request, rt: Rt, ctx: Manager) -> Response:
    require_recent_sign_in(request, rt)
    info = ra_networks.page(rt, ctx)
    form = ui.Form(values={"networks": "\n".join(info.networks)})
    return _render(request, info, form, ctx)


@router.post("/networks")
async def change_networks(request: Request, rt: Rt, view: View, ctx: Manager) -> Response:
    form = await ui.checked_form(request, view)
    return await run_in_threadpool(_change, request, rt, view, ctx, form)


def _change(
    request: Request, rt: Runtime, view: WebSessionView, ctx: RaContext, form: ui.Form
) -> Response:
    require_recent_sign_in(request, rt)
    if (done := already_sent(rt, request, view, form, PATH)) is not None:
        return done
    sent = ra_networks.NetworksForm(
        text=form.get("networks"),
        shown=tuple(form.get("shown").split()),
        allow_everywhere=form.get("allow_everywhere") == "yes",
        lock_out_confirmed=form.get("confirm_lock_out") == "yes",
    )
    try:
        result = ra_networks.change(rt, ctx, sent)
    except CardvaultError as exc:
        form.add_error(FIELDS.get(exc.code, "networks"), exc.message)
        info = ra_networks.page(rt, ctx)
        return _render(request, info, form.shown(), ctx, status=status_of(exc))
    count = len(result.networks)
    ui.set_notice(
        rt,
        request,
        f"The networks of {result.code} are saved ({count} "
        f"{'network' if count == 1 else 'networks'}); the whole service applies them within "
        "a second."
        if result.changed
        else "The list is the same as before; nothing was changed.",
    )
    return ui.redirect(PATH)


def _render(
    request: Request,
    info: ra_networks.NetworksPage,
    form: ui.Form,
    ctx: RaContext,
    status: int = 200,
) -> Response:
    return ui.render(request, "ra/networks.html", status=status, info=info, form=form, ctx=ctx)
