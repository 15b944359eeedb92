"""Signing in to the vRA Manager with a FIDO2 security key (the RA's own card, purpose ``ra``).

Two ways, as at the PC:

* **key first** (the sign-in page's "Use a security key"): the page's script runs the
  key-first ceremony of ``/api/v1/webauthn/assertion/*`` and posts the proof here; it
  waits in the web session (server-side) for the passcode page, and the engine then opens
  the card session (identifier ``fido2``, second factor the same proof);
* **key as the second factor** (the code page's "Use a security key instead"): after the
  passcode, the script asks ``/ra/api/login/fido2`` for the options the engine is waiting
  for, lets the key answer them, and posts the answer there (``second_factor``, which also
  serves re-authentication at ``/ra/api/reauth/fido2``).

Both end alike: the web session is bound to the new card session.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from cardvault.domain.vocabulary import SignInRoute
from cardvault.errors import CardvaultError
from cardvault.services.security_keys import signin as security_key_signin
from cardvault.services.signin import web_sessions
from cardvault.services.signin.engine import LoginRequest, LoginResult
from cardvault.services.signin.factors import FactorAnswer
from cardvault.services.signin.web_sessions import WebSessionView
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.web import ui
from cardvault.web.client_address import actor_for
from cardvault.web.deps import engine_of
from cardvault.web.errors import status_of
from cardvault.web.ra.context import Rt, View
from cardvault.web.ra.second_factor import signed_in
from cardvault.web.rate_limit import Bucket, per_address

router = APIRouter(prefix="/ra", tags=["vRA Manager"], include_in_schema=False)
NEXT = "/ra/role"


# --- key first ------------------------------------------------------------------------


@router.post("/login/key", dependencies=[per_address(Bucket.SIGNIN)])
async def key_first(request: Request, rt: Rt, view: View) -> Response:
    """The page's script posts the proof of the key's verified answer; the passcode next."""
    form = await ui.checked_form(request, view, ("proof",))
    proof = form.get("proof").strip()
    if not proof or len(proof) > security_key_signin.MAX_PROOF:
        ui.set_notice(rt, request, "Use your security key first: press its button.")
        return ui.redirect("/ra")
    web_sessions.update_data(rt, view, login_proof=proof, login_txn=None)
    return ui.redirect("/ra/login/key")


@router.get("/login/key")
def key_passcode_page(request: Request, view: View) -> Response:
    if not view.data.get("login_proof"):
        return ui.redirect("/ra")
    return ui.render(request, "ra/login_key.html", form=ui.Form())


@router.post("/login/key/passcode", dependencies=[per_address(Bucket.SIGNIN)])
async def key_passcode(request: Request, rt: Rt, view: View) -> Response:
    form = await ui.checked_form(request, view, ("passcode",))
    return await run_in_threadpool(_key_passcode, request, rt, view, form)


def _key_passcode(request: Request, rt: Runtime, view: WebSessionView, form: ui.Form) -> Response:
    proof = str(view.data.get("login_proof") or "")
    if not proof:
        return ui.redirect("/ra")
    if not form.get("passcode"):
        form.add_error("passcode", "Enter your passcode.")
        return _key_page(request, form, 422)
    try:
        result = key_first_login(request, actor_for(request, rt), proof, form.get("passcode"))
    except CardvaultError as exc:
        form.add_error("passcode", exc.message)
        return _key_page(request, form, status_of(exc))
    if result.session is None:
        web_sessions.update_data(rt, view, login_proof=None)
        error = result.factor_error
        message = error.message if error else "The sign-in did not finish."
        ui.set_notice(rt, request, f"{message} Use your security key again.")
        return ui.redirect("/ra")
    # no identifier was typed: re-authentication offers the key again (``reauth_key``);
    # the email address is kept to show who is signed in
    email = security_key_signin.holder_email(rt, result.transaction_id)
    signed_in(request, rt, view, result.transaction_id, "fido2", email)
    return ui.redirect(NEXT)


def key_first_login(request: Request, actor: Actor, proof: str, passcode: str) -> LoginResult:
    """An RA's sign-in whose security key answered first: the proof of its verified answer
    names the card and stands for the second factor; the passcode opens the card."""
    route = str(SignInRoute.SECURITY_KEY)
    return engine_of(request).login(
        actor,
        LoginRequest(
            identifier_kind=route,
            identifier=proof,
            passcode=passcode,
            purpose="ra",
            second_factor=FactorAnswer(method=route, proof=proof, has_proof=True),
        ),
    )


def _key_page(request: Request, form: ui.Form, status: int) -> Response:
    return ui.render(request, "ra/login_key.html", status=status, form=form.shown())
