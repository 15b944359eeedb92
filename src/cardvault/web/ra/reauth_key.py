"""Confirming it is you with the security key you signed in with (issue 21).

An RA who signed in to the vRA Manager with a security key alone typed no identifier, so
re-authentication before a sensitive action cannot ask for one: the page offers the key
again (the key-first ceremony of ``/api/v1/webauthn/assertion/*``, as at sign-in), then the
passcode. The new card session must be the same person's: another person's key and
passcode open nothing here (their session is closed at once, and the action refused).
"""

from __future__ import annotations

import contextlib

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from cardvault.domain.vocabulary import SignInRoute
from cardvault.errors import CardvaultError
from cardvault.services.security_keys import signin as security_key_signin
from cardvault.services.signin import sessions as card_sessions
from cardvault.services.signin import web_sessions
from cardvault.services.signin.web_sessions import WebSessionView
from cardvault.services.system.runtime import Runtime
from cardvault.web import ui
from cardvault.web.client_address import actor_for
from cardvault.web.errors import status_of
from cardvault.web.ra.context import Rt, View, safe_next
from cardvault.web.ra.second_factor import reauthenticated
from cardvault.web.ra.security_key_login import key_first_login
from cardvault.web.rate_limit import Bucket, per_address

router = APIRouter(prefix="/ra", tags=["vRA Manager"], include_in_schema=False)
#: how a web session that signed in with the key alone remembers it (``ident_kind``)
KEY_FIRST = str(SignInRoute.SECURITY_KEY)


def signed_in_with_key(view: WebSessionView) -> bool:
    return view.data.get("ident_kind") == KEY_FIRST


@router.post("/reauth/key", dependencies=[per_address(Bucket.SIGNIN)])
async def key_answered(request: Request, rt: Rt, view: View) -> Response:
    """The page's script posts the proof of the key's verified answer; the passcode next."""
    form = await ui.checked_form(request, view, ("proof",))
    target = safe_next(form.get("next"))
    proof = form.get("proof").strip()
    if not view.signed_in:
        return ui.redirect("/ra")
    if not proof or len(proof) > security_key_signin.MAX_PROOF:
        ui.set_notice(rt, request, "Use your security key first: press its button.")
        return ui.redirect(f"/ra/reauth?next={target}")
    web_sessions.update_data(rt, view, reauth_proof=proof, reauth_next=target)
    return ui.redirect("/ra/reauth/key")


@router.get("/reauth/key")
def passcode_page(request: Request, view: View) -> Response:
    if not view.signed_in or not view.data.get("reauth_proof"):
        return ui.redirect("/ra")
    return _page(request, ui.Form(), 200)


@router.post("/reauth/key/passcode", dependencies=[per_address(Bucket.SIGNIN)])
async def passcode(request: Request, rt: Rt, view: View) -> Response:
    form = await ui.checked_form(request, view, ("passcode",))
    return await run_in_threadpool(_passcode, request, rt, view, form)


def _passcode(request: Request, rt: Runtime, view: WebSessionView, form: ui.Form) -> Response:
    proof = str(view.data.get("reauth_proof") or "")
    if not view.signed_in or not proof:
        return ui.redirect("/ra")
    if not form.get("passcode"):
        form.add_error("passcode", "Enter your passcode.")
        return _page(request, form, 422)
    actor = actor_for(request, rt)
    try:
        result = key_first_login(request, actor, proof, form.get("passcode"))
    except CardvaultError as exc:
        form.add_error("passcode", exc.message)
        return _page(request, form, status_of(exc))
    view = web_sessions.update_data(rt, view, reauth_proof=None)
    again = f"/ra/reauth?next={safe_next(str(view.data.get('reauth_next') or ''))}"
    if result.session is None:
        error = result.factor_error
        message = error.message if error else "The confirmation did not finish."
        ui.set_notice(rt, request, f"{message} Use your security key again.")
        return ui.redirect(again)
    new = result.transaction_id
    if not security_key_signin.same_holder(rt, new, view.card_session_id or ""):
        with contextlib.suppress(CardvaultError):
            card_sessions.logout(rt, actor, None, session_id=new)
        ui.set_notice(rt, request, "Use your own security key and passcode.")
        return ui.redirect(again)
    return ui.redirect(reauthenticated(request, rt, view, new))


def _page(request: Request, form: ui.Form, status: int) -> Response:
    return ui.render(
        request,
        "ra/login_key.html",
        status=status,
        form=form.shown(),
        action="/ra/reauth/key/passcode",
        title="Confirm it is you",
    )
