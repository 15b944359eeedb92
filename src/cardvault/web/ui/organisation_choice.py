"""Choosing the organisation at a web sign-in: the vRA Manager's and the portal's My card
(issue 21).

An email address names a person, not an organisation: when several of the person's
organisations would admit the sign-in, the engine lists them after the right passcode, and
this page (``<flow>/organisation``, before the second step of ``ui.second_factor``) asks
which one. The second factors offered, the networks and the session's organisation are then
that organisation's; the vRA Manager's re-authentication later goes to the same one (the
web-session key ``<flow>_org``).
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from cardvault.errors import CardvaultError, InvalidInput
from cardvault.json_types import JsonObject
from cardvault.services.signin import web_sessions
from cardvault.services.signin.engine import LoginResult
from cardvault.services.signin.web_sessions import WebSessionView
from cardvault.services.system.runtime import Runtime
from cardvault.web.client_address import actor_for
from cardvault.web.deps import engine_of, runtime
from cardvault.web.rate_limit import Bucket, per_address
from cardvault.web.ui.forms import Form, read_form
from cardvault.web.ui.second_factor import Flow
from cardvault.web.ui.session import check_csrf, set_notice
from cardvault.web.ui.templating import redirect, render


def ask(rt: Runtime, flow: Flow, view: WebSessionView, result: LoginResult) -> str:
    """Keep the organisations listed after the passcode; where the browser goes next."""
    listed = [{"code": o.code, "name": o.name} for o in result.organisations]
    web_sessions.update_data(
        rt, view, **{f"{flow.name}_txn": result.transaction_id, f"{flow.name}_orgs": listed}
    )
    return f"{flow.path}/organisation"


def _listed(flow: Flow, view: WebSessionView) -> list[JsonObject]:
    orgs = flow.get(view, "orgs")
    return [o for o in orgs if isinstance(o, dict)] if isinstance(orgs, list) else []


def page(request: Request, flow: Flow, view: WebSessionView) -> Response:
    if flow.txn(view) is None or not _listed(flow, view):
        return redirect(flow.restart(view))
    return _page(request, flow, view, Form(), 200)


def choose(request: Request, rt: Runtime, flow: Flow, view: WebSessionView, form: Form) -> Response:
    txn, listed = flow.txn(view), [str(o.get("code")) for o in _listed(flow, view)]
    if txn is None or not listed:
        return redirect(flow.restart(view))
    code = form.get("organisation")
    if code not in listed:
        form.add_error("organisation", "Choose the organisation you are signing in to.")
        return _page(request, flow, view, form, 422)
    try:
        result = engine_of(request).choose_organisation(actor_for(request, rt), txn, code)
    except InvalidInput as exc:
        form.add_exception(exc, default="organisation")
        return _page(request, flow, view, form, 422)
    except CardvaultError as exc:
        set_notice(rt, request, f"{exc.message} Sign in again.")
        return redirect(flow.restart(flow.forget(rt, view, "txn", "orgs")))
    if result.factor_error:
        set_notice(rt, request, result.factor_error.message)
        return redirect(flow.restart(flow.forget(rt, view, "txn", "orgs")))
    web_sessions.update_data(
        rt,
        view,
        **{
            f"{flow.name}_orgs": None,
            f"{flow.name}_org": code,
            f"{flow.name}_factors": [o.method for o in result.second_factors],
            f"{flow.name}_push": None,
        },
    )
    return redirect(f"{flow.path}/code")


def _page(request: Request, flow: Flow, view: WebSessionView, form: Form, status: int) -> Response:
    return render(
        request,
        "ui/organisation.html",
        status=status,
        flow=flow,
        form=form.shown(),
        organisations=_listed(flow, view),
        restart=flow.restart(view),
    )


def install(router: APIRouter, flow: Flow, session: Callable[[Request], WebSessionView]) -> None:
    """The flow's organisation page, on its area's router (prefix ``flow.prefix``)."""
    view_of, rt_of = Depends(session), Depends(runtime)
    base = flow.prefix.removeprefix(router.prefix)

    @router.get(f"{base}/{flow.name}/organisation")
    def get_page(request: Request, view: WebSessionView = view_of) -> Response:
        return page(request, flow, view)

    @router.post(f"{base}/{flow.name}/organisation", dependencies=[per_address(Bucket.SIGNIN)])
    async def post_choice(
        request: Request, rt: Runtime = rt_of, view: WebSessionView = view_of
    ) -> Response:
        form = await read_form(request)
        check_csrf(view, form)
        return await run_in_threadpool(choose, request, rt, flow, view, form)
