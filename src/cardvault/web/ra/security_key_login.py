"""Signing in to the vRA Manager with a FIDO2 security key (the RA's own card, purpose ``ra``).

Two ways, as at the PC:

* **key first** (the sign-in page's "Use a security key"): the page's script runs the
  key-first ceremony of ``/api/v1/webauthn/assertion/*`` and posts the proof here; it
  waits in the web session (server-side) for the passcode page, and the engine then opens
  the card session (identifier ``fido2``, second factor the same proof);
* **key as the second factor** (the code page's "Use a security key instead"): after the
  passcode, the script asks here for the options the engine is waiting for, lets the key
  answer them, and posts the answer here.

Both end like the code page: the web session is bound to the new card session.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from cardvault.errors import CardvaultError
from cardvault.services import security_key_signin, web_sessions
from cardvault.services.authentication import LoginRequest, TransactionInvalid
from cardvault.services.factors import fido2 as fido2_factor
from cardvault.services.runtime import Runtime
from cardvault.services.web_sessions import WebSessionView
from cardvault.web import ui
from cardvault.web.client_address import actor_for
from cardvault.web.deps import engine
from cardvault.web.ra.common import AREA, Rt, View
from cardvault.web.ui.session import remember

router = APIRouter(prefix="/ra", tags=["vRA Manager"], include_in_schema=False)
NEXT = "/ra/role"


# --- key first ------------------------------------------------------------------------


@router.post("/login/key")
async def key_first(request: Request, rt: Rt, view: View) -> Response:
    """The page's script posts the proof of the key's verified answer; the passcode next."""
    form = await ui.read_form(request, secret_fields=("proof",))
    ui.check_csrf(view, form)
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


@router.post("/login/key/passcode")
async def key_passcode(request: Request, rt: Rt, view: View) -> Response:
    form = await ui.read_form(request, secret_fields=("passcode",))
    ui.check_csrf(view, form)
    return await run_in_threadpool(_key_passcode, request, rt, view, form)


def _key_passcode(request: Request, rt: Runtime, view: WebSessionView, form: ui.Form) -> Response:
    proof = str(view.data.get("login_proof") or "")
    if not proof:
        return ui.redirect("/ra")
    if not form.get("passcode"):
        form.add_error("passcode", "Enter your passcode.")
        return _key_page(request, form, 422)
    try:
        result = engine(request).login(
            actor_for(request, rt),
            LoginRequest(
                identifier_kind="fido2",
                identifier=proof,
                passcode=form.get("passcode"),
                purpose="ra",
                second_factor={"method": "fido2", "proof": proof},
            ),
        )
    except CardvaultError as exc:
        form.add_error("passcode", exc.message)
        return _key_page(request, form, exc.http_status)
    if result.session is None:
        web_sessions.update_data(rt, view, login_proof=None)
        message = (result.factor_error or {}).get("message", "The sign-in did not finish.")
        ui.set_notice(rt, request, f"{message} Use your security key again.")
        return ui.redirect("/ra")
    email = security_key_signin.holder_email(rt, result.transaction_id)
    _signed_in(request, rt, view, result.transaction_id, "email", email)
    return ui.redirect(NEXT)


def _key_page(request: Request, form: ui.Form, status: int) -> Response:
    return ui.render(request, "ra/login_key.html", status=status, form=form.shown())


# --- key as the second factor ----------------------------------------------------------


@router.get("/api/login/fido2")
def factor_options(rt: Rt, view: View) -> dict[str, Any]:
    """The options of the security-key challenge this sign-in is waiting for."""
    txn = view.data.get("login_txn")
    options = fido2_factor.pending_options(rt, str(txn)) if txn else None
    if options is None:
        raise TransactionInvalid("This sign-in has expired or was already tried; start again.")
    return options


@router.post("/api/login/fido2")
async def factor_answer(
    request: Request,
    rt: Rt,
    view: View,
    x_csrf_token: Annotated[str | None, Header()] = None,
) -> dict[str, str]:
    """The key's answer: when it checks out, the RA is signed in."""
    ui.check_csrf(view, header=x_csrf_token)
    credential = await ui.read_credential(request)
    return await run_in_threadpool(_factor_answer, request, rt, view, credential)


def _factor_answer(
    request: Request, rt: Runtime, view: WebSessionView, credential: dict[str, Any]
) -> dict[str, str]:
    txn = view.data.get("login_txn")
    if not txn:
        raise TransactionInvalid("This sign-in has expired; start again.")
    engine(request).complete_factor(
        actor_for(request, rt), str(txn), {"method": "fido2", "credential": credential}
    )
    kind, ident = view.data.get("login_kind"), view.data.get("login_ident")
    _signed_in(request, rt, view, str(txn), str(kind or ""), str(ident or "") or None)
    return {"next": NEXT}


def _signed_in(
    request: Request,
    rt: Runtime,
    view: WebSessionView,
    card_session_id: str,
    kind: str,
    ident: str | None,
) -> None:
    """Bind the web session to the card session; remember who signed in, for
    re-authentication later (by passcode and code, as the vRA Manager asks for it)."""
    signed = web_sessions.sign_in(rt, view, card_session_id=card_session_id)
    signed = web_sessions.update_data(
        rt, signed, login_txn=None, login_proof=None, ident_kind=kind, ident=ident
    )
    remember(request, AREA, signed)
