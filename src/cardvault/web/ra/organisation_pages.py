"""The organisation's settings and RA roles (RA managers) and card approvals (sponsors).

Thin routes over ``services/ra/settings.py``, ``roles.py`` and ``approvals.py``; settings
and role changes are sensitive, so they need a recent sign-in (re-authentication).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from cardvault.domain.vocabulary import RaRole
from cardvault.errors import CardvaultError
from cardvault.services.ra import approvals as ra_approvals
from cardvault.services.ra import roles as ra_roles
from cardvault.services.ra import settings as ra_settings
from cardvault.services.ra.actions import RaContext
from cardvault.services.signin.web_sessions import WebSessionView
from cardvault.services.system.runtime import Runtime
from cardvault.web import ui
from cardvault.web.errors import status_of
from cardvault.web.ra.context import Manager, RoleGranter, Rt, Sponsor, View, require_recent_sign_in
from cardvault.web.ra.persons import already_sent

router = APIRouter(prefix="/ra", tags=["vRA Manager"], include_in_schema=False)
SETTINGS = "/ra/organisation/settings"
ROLES = "/ra/roles"
APPROVALS = "/ra/approvals"


# --- settings ---------------------------------------------------------------------------------


def _settings_values(view: ra_settings.SettingsView) -> dict[str, str]:
    values = {name: str(number) for name, number in view.numbers.items()}
    values |= {name: "yes" for name, on in view.switches.items() if on}
    values |= {f"route_{r}": "yes" for r in view.allowed_methods}
    values |= {f"factor_{f}": "yes" for f in view.second_factors}
    return values


def _settings_page(
    request: Request, rt: Runtime, ctx: RaContext, form: ui.Form, status: int = 200
) -> Response:
    return ui.render(
        request,
        "ra/settings.html",
        status=status,
        info=ra_settings.show(rt, ctx),
        numbers=ra_settings.NUMBERS,
        switches=ra_settings.SWITCHES,
        routes=ra_settings.ROUTES,
        factors=ra_settings.FACTORS,
        form=form,
        ctx=ctx,
    )


@router.get("/organisation/settings")
def settings_page(request: Request, rt: Rt, ctx: Manager) -> Response:
    require_recent_sign_in(request, rt)
    form = ui.Form(values=_settings_values(ra_settings.show(rt, ctx)))
    return _settings_page(request, rt, ctx, form)


@router.post("/organisation/settings")
async def change_settings(request: Request, rt: Rt, view: View, ctx: Manager) -> Response:
    form = await ui.checked_form(request, view)
    return await run_in_threadpool(_change_settings, request, rt, view, ctx, form)


def _change_settings(
    request: Request, rt: Runtime, view: WebSessionView, ctx: RaContext, form: ui.Form
) -> Response:
    require_recent_sign_in(request, rt)
    sent = ra_settings.SettingsForm(
        allowed_methods=tuple(r for r in ra_settings.ROUTES if form.get(f"route_{r}") == "yes"),
        numbers={n.name: form.get(n.name) for n in ra_settings.NUMBERS},
        second_factors=tuple(f for f in ra_settings.FACTORS if form.get(f"factor_{f}") == "yes"),
        switches={name: form.get(name) == "yes" for name in ra_settings.SWITCHES},
    )
    for problem in ra_settings.problems(sent):
        form.add_exception(problem)
    if not form.ok:
        return _settings_page(request, rt, ctx, form, 422)
    if (done := already_sent(rt, request, view, form, SETTINGS)) is not None:
        return done
    try:
        changes = ra_settings.change(rt, ctx, sent)
    except CardvaultError as exc:
        form.add_exception(exc)
        return _settings_page(request, rt, ctx, form, status_of(exc))
    names = ", ".join(c.name.replace("_", " ") for c in changes)
    ui.set_notice(rt, request, f"Settings saved: {names}." if changes else "Nothing was changed.")
    return ui.redirect(SETTINGS)


# --- RA roles ---------------------------------------------------------------------------------


def _roles_page(
    request: Request, rt: Runtime, ctx: RaContext, form: ui.Form, status: int = 200
) -> Response:
    options = [(r.value, r.label) for r in RaRole]
    return ui.render(
        request,
        "ra/roles.html",
        status=status,
        info=ra_roles.page(rt, ctx),
        options=options,
        form=form,
        ctx=ctx,
    )


@router.get("/roles")
def roles_page(request: Request, rt: Rt, ctx: RoleGranter) -> Response:
    return _roles_page(request, rt, ctx, ui.Form())


@router.post("/roles")
async def grant_role(request: Request, rt: Rt, view: View, ctx: RoleGranter) -> Response:
    form = await ui.checked_form(request, view)
    return await run_in_threadpool(_grant, request, rt, view, ctx, form)


def _grant(
    request: Request, rt: Runtime, view: WebSessionView, ctx: RaContext, form: ui.Form
) -> Response:
    require_recent_sign_in(request, rt)
    if (done := already_sent(rt, request, view, form, ROLES)) is not None:
        return done
    try:
        granted = ra_roles.grant(rt, ctx, form.get("user_id"), form.get("role"))
    except CardvaultError as exc:
        form.add_exception(exc, default="user_id")
        return _roles_page(request, rt, ctx, form, status_of(exc))
    ui.set_notice(
        rt,
        request,
        "The role is given." if granted else "The grant now waits for a second RA manager.",
    )
    return ui.redirect(ROLES)


@router.post("/roles/take-away")
async def take_away(request: Request, rt: Rt, view: View, ctx: RoleGranter) -> Response:
    form = await ui.checked_form(request, view)
    return await run_in_threadpool(_take_away, request, rt, ctx, form)


def _take_away(request: Request, rt: Runtime, ctx: RaContext, form: ui.Form) -> Response:
    require_recent_sign_in(request, rt)
    try:
        ra_roles.take_away(rt, ctx, form.get("user_id"), form.get("role"))
    except CardvaultError as exc:
        form.add_exception(exc, default="user_id")
        return _roles_page(request, rt, ctx, form, status_of(exc))
    ui.set_notice(rt, request, "The role is taken away.")
    return ui.redirect(ROLES)


@router.post("/roles/requests/{request_id}/{decision}")
async def decide(
    request: Request, rt: Rt, view: View, ctx: RoleGranter, request_id: str, decision: str
) -> Response:
    form = await ui.checked_form(request, view)
    return await run_in_threadpool(_decide, request, rt, ctx, form, request_id, decision)


def _decide(
    request: Request, rt: Runtime, ctx: RaContext, form: ui.Form, request_id: str, decision: str
) -> Response:
    require_recent_sign_in(request, rt)
    if decision not in ("approve", "refuse"):
        raise ui.RedirectTo(location=ROLES)
    try:
        shown = ra_roles.decide(rt, ctx, request_id, approve=decision == "approve")
    except CardvaultError as exc:
        form.add_exception(exc, default="requests")
        return _roles_page(request, rt, ctx, form, status_of(exc))
    verb = "given to" if decision == "approve" else "refused for"
    ui.set_notice(rt, request, f"The role {shown.role.label} is {verb} {shown.name}.")
    return ui.redirect(ROLES)


# --- card approvals (sponsors) ----------------------------------------------------------------


@router.get("/approvals")
def approvals_page(request: Request, rt: Rt, ctx: Sponsor) -> Response:
    info = ra_approvals.page(rt, ctx)
    return ui.render(request, "ra/approvals.html", info=info, form=ui.Form(), ctx=ctx)


@router.post("/approvals/{user_id}")
async def approve(request: Request, rt: Rt, view: View, ctx: Sponsor, user_id: str) -> Response:
    form = await ui.checked_form(request, view)
    return await run_in_threadpool(_approve, request, rt, view, ctx, form, user_id)


def _approve(
    request: Request, rt: Runtime, view: WebSessionView, ctx: RaContext, form: ui.Form, user_id: str
) -> Response:
    if (done := already_sent(rt, request, view, form, APPROVALS)) is not None:
        return done
    name = ra_approvals.approve(rt, ctx, user_id)
    ui.set_notice(rt, request, f"A card for {name} is approved.")
    return ui.redirect(APPROVALS)
