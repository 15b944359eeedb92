"""Signing in to the vRA Manager with the RA's own card, choosing a role, signing out.

Sign-in is the authentication engine's (purpose ``ra``): an identifier and the passcode
here, then a second factor (``second_factor``: a code, a push to the paired phone, or the
security key); the engine refuses anyone without an RA role, so such a person never gets
past this page. The card session it opens is bound to the web session (whose token is
rotated); the session key SK is not needed by a browser and is wiped at once.

Re-authentication before a sensitive action is the same: a fresh sign-in by the RA's own
identifier and passcode, then the same second-factor step; an RA who signed in with a
security key alone confirms with the key again (``reauth_key``).
"""

from __future__ import annotations

import contextlib

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from cardvault.domain.vocabulary import RaRole
from cardvault.errors import CardvaultError
from cardvault.services.ra import actions as ra_actions
from cardvault.services.signin import sessions as card_sessions
from cardvault.services.signin import web_sessions
from cardvault.services.signin.engine import LoginRequest
from cardvault.services.signin.web_sessions import WebSessionView
from cardvault.services.system.runtime import Runtime
from cardvault.web import ui
from cardvault.web.client_address import actor_for
from cardvault.web.deps import engine_of
from cardvault.web.errors import status_of
from cardvault.web.ra.context import AREA, Rt, View, safe_next
from cardvault.web.ra.reauth_key import signed_in_with_key
from cardvault.web.ra.second_factor import LOGIN
from cardvault.web.rate_limit import Bucket, per_address
from cardvault.web.ui import first_step
from cardvault.web.ui.session import address, remember

router = APIRouter(prefix="/ra", tags=["vRA Manager"], include_in_schema=False)
#: what the paired phone shows as the computer asking, when a push is sent
CLIENT_NAME = "vRA Manager"


def _identified(rt: Runtime, view: WebSessionView, kind: str, ident: str) -> WebSessionView:
    """Who typed what, kept for re-authentication later (``second_factor.signed_in``)."""
    return web_sessions.update_data(rt, view, login_kind=kind, login_ident=ident, login_org=None)


FIRST_STEP = first_step.FirstStep(
    flow=LOGIN,
    purpose="ra",
    client_name=CLIENT_NAME,
    template="ra/login.html",
    identified=_identified,
)


@router.get("")
def start(request: Request, view: View) -> Response:
    if view.signed_in:
        role = view.data.get("ra_role")
        return ui.redirect(home_of(str(role)) if role else "/ra/role")
    return ui.render(request, "ra/login.html")


@router.post("", dependencies=[per_address(Bucket.SIGNIN)])
async def login(request: Request, rt: Rt, view: View) -> Response:
    form = await ui.checked_form(request, view, first_step.SECRETS)
    return await run_in_threadpool(first_step.sign_in, request, rt, view, form, FIRST_STEP)


@router.get("/role")
def role_page(request: Request, rt: Rt, view: View) -> Response:
    if not view.signed_in:
        return ui.redirect("/ra")
    roles = ra_actions.roles(rt, None, address(request, rt), session_id=view.card_session_id)
    current = f"{view.data.get('ra_org')}:{view.data.get('ra_role')}"
    if len(roles) == 1:
        current = f"{roles[0]['organisation']}:{roles[0]['role']}"
    return ui.render(request, "ra/role.html", roles=roles, form=ui.Form(values={"role": current}))


@router.post("/role")
async def choose_role(request: Request, rt: Rt, view: View) -> Response:
    form = await ui.checked_form(request, view, first_step.SECRETS)
    return await run_in_threadpool(_choose_role, request, rt, view, form)


def _choose_role(request: Request, rt: Runtime, view: WebSessionView, form: ui.Form) -> Response:
    if not view.signed_in:
        return ui.redirect("/ra")
    org, _, role = form.get("role").partition(":")
    roles = ra_actions.roles(rt, None, address(request, rt), session_id=view.card_session_id)
    if not any(r["organisation"] == org and r["role"] == role for r in roles):
        form.add_error("role", "Choose one of your RA roles.")
        return ui.render(request, "ra/role.html", status=422, roles=roles, form=form)
    card_sessions.select_role(
        rt, actor_for(request, rt), None, org_code=org, role=role, session_id=view.card_session_id
    )
    web_sessions.update_data(rt, view, ra_org=org, ra_role=role)
    return ui.redirect(home_of(role))


def home_of(role: str) -> str:
    """The first page of a role: the audit log for an auditor, approvals for a sponsor."""
    if role == RaRole.AUDITOR:
        return "/ra/audit"
    if role == RaRole.SPONSOR:
        return "/ra/approvals"
    return "/ra/persons"


@router.post("/logout")
async def logout(request: Request, rt: Rt, view: View) -> Response:
    form = await ui.checked_form(request, view, first_step.SECRETS)
    return await run_in_threadpool(_logout, request, rt, view, form)


def _logout(request: Request, rt: Runtime, view: WebSessionView, form: ui.Form) -> Response:
    card_session = web_sessions.end(rt, view)
    if card_session:
        # already ended (expired, locked)? signing out is done either way
        with contextlib.suppress(CardvaultError):
            card_sessions.logout(rt, actor_for(request, rt), None, session_id=card_session)
    fresh = web_sessions.start(rt, AREA.name, client_address=address(request, rt))
    remember(request, AREA, fresh)
    ui.set_notice(rt, request, "You have signed out.")
    return ui.redirect("/ra")


# --- re-authentication before sensitive actions -----------------------------------------


def _reauth_page(
    request: Request, view: WebSessionView, form: ui.Form, target: str, status: int = 200
) -> Response:
    return ui.render(
        request,
        "ra/reauth.html",
        status=status,
        form=form.shown(),
        next=target,
        ident=view.data.get("ident"),
        key=signed_in_with_key(view),
    )


@router.get("/reauth")
def reauth_page(request: Request, view: View, next: str = "") -> Response:
    if not view.signed_in:
        return ui.redirect("/ra")
    return _reauth_page(request, view, ui.Form(), safe_next(next))


@router.post("/reauth")
async def reauth(request: Request, rt: Rt, view: View) -> Response:
    form = await ui.checked_form(request, view, first_step.SECRETS)
    return await run_in_threadpool(_reauth, request, rt, view, form)


def _reauth(request: Request, rt: Runtime, view: WebSessionView, form: ui.Form) -> Response:
    """A fresh sign-in by the RA's own identifier and passcode (a wrong passcode counts
    toward the card's lockout like any other); then the second factor, as at sign-in."""
    if not view.signed_in:
        return ui.redirect("/ra")
    target = safe_next(form.get("next"))
    ident = view.data.get("ident")
    if signed_in_with_key(view):  # no identifier was typed: the key again (``reauth_key``)
        form.add_error("passcode", "Use your security key first, then enter your passcode.")
    elif not ident:
        form.add_error("passcode", "Sign out, then sign in again to do this.")
    elif not form.get("passcode"):
        form.add_error("passcode", "Enter your passcode.")
    if not form.ok:
        return _reauth_page(request, view, form, target, 422)
    try:
        result = engine_of(request).login(
            actor_for(request, rt),
            LoginRequest(
                identifier_kind=str(view.data.get("ident_kind")),
                identifier=str(ident),
                passcode=form.get("passcode"),
                purpose="ra",
                # the organisation chosen at sign-in, when there was a choice
                organisation=str(view.data.get("login_org") or "") or None,
                client_name=CLIENT_NAME,
            ),
        )
    except CardvaultError as exc:
        form.add_error("passcode", exc.message)
        return _reauth_page(request, view, form, target, status_of(exc))
    if result.organisations:  # no choice at sign-in, yet several now: the first, as then
        result = engine_of(request).choose_organisation(
            actor_for(request, rt), result.transaction_id, result.organisations[0].code
        )
    if result.factor_error:
        form.add_error("passcode", result.factor_error.message)
        return _reauth_page(request, view, form, target, 401)
    web_sessions.update_data(
        rt,
        view,
        reauth_txn=result.transaction_id,
        reauth_factors=[o.method for o in result.second_factors],
        reauth_push=None,
        reauth_next=target,
    )
    return ui.redirect("/ra/reauth/code")
