"""Choosing the organisation at sign-in to the vRA Manager (issue 21).

An email address names a person, not an organisation: when several of the RA's
organisations would admit the sign-in, the engine lists them after the right passcode, and
this page asks which one. The second factors offered, the networks and the session's
organisation are then that organisation's; re-authentication later goes to the same one.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from cardvault.errors import CardvaultError, InvalidInput
from cardvault.services.signin import web_sessions
from cardvault.services.signin.engine import LoginResult
from cardvault.services.signin.web_sessions import WebSessionView
from cardvault.services.system.runtime import Runtime
from cardvault.web import ui
from cardvault.web.client_address import actor_for
from cardvault.web.deps import engine
from cardvault.web.ra.context import Rt, View
from cardvault.web.rate_limit import Bucket, per_address

router = APIRouter(prefix="/ra", tags=["vRA Manager"], include_in_schema=False)
PAGE = "/ra/login/organisation"


def ask(rt: Runtime, view: WebSessionView, result: LoginResult) -> str:
    """Keep the organisations listed after the passcode; where the browser goes next."""
    listed = [{"code": o.code, "name": o.name} for o in result.organisations]
    web_sessions.update_data(rt, view, login_txn=result.transaction_id, login_orgs=listed)
    return PAGE


@router.get("/login/organisation")
def page(request: Request, view: View) -> Response:
    if not view.data.get("login_txn") or not view.data.get("login_orgs"):
        return ui.redirect("/ra")
    return _page(request, view, ui.Form(), 200)


@router.post("/login/organisation", dependencies=[per_address(Bucket.SIGNIN)])
async def choose(request: Request, rt: Rt, view: View) -> Response:
    form = await ui.read_form(request)
    ui.check_csrf(view, form)
    return await run_in_threadpool(_choose, request, rt, view, form)


def _choose(request: Request, rt: Runtime, view: WebSessionView, form: ui.Form) -> Response:
    txn = str(view.data.get("login_txn") or "")
    listed = [str(o["code"]) for o in view.data.get("login_orgs") or []]
    if not txn or not listed:
        return ui.redirect("/ra")
    code = form.get("organisation")
    if code not in listed:
        form.add_error("organisation", "Choose the organisation you are signing in to.")
        return _page(request, view, form, 422)
    try:
        result = engine(request).choose_organisation(actor_for(request, rt), txn, code)
    except InvalidInput as exc:
        form.add_exception(exc, default="organisation")
        return _page(request, view, form, 422)
    except CardvaultError as exc:
        ui.set_notice(rt, request, f"{exc.message} Sign in again.")
        return ui.redirect("/ra")
    if result.factor_error:
        ui.set_notice(rt, request, str(result.factor_error["message"]))
        return ui.redirect("/ra")
    web_sessions.update_data(
        rt,
        view,
        login_orgs=None,
        login_org=code,
        login_factors=[o.get("method") for o in result.second_factors],
        login_push=None,
    )
    return ui.redirect("/ra/login/code")


def _page(request: Request, view: WebSessionView, form: ui.Form, status: int) -> Response:
    return ui.render(
        request,
        "ra/organisation.html",
        status=status,
        form=form.shown(),
        organisations=view.data.get("login_orgs") or [],
    )
