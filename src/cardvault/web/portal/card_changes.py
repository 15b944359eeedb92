"""My card's changes: passcode, security questions, recovery code, phones and keys, recent use.

Each page needs a signed-in holder (else back to the sign-in); each change asks for the
current passcode (the service opens the card with it) and is one service call. Errors
come back on the same page with the error summary; a wrong current passcode says how
many tries are left before the card locks.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from cardvault.domain.card_pin import rule as card_pin_rule
from cardvault.errors import CardvaultError
from cardvault.services.holders import account, activity, methods
from cardvault.services.holders import card_pin as holder_pin
from cardvault.services.signin.web_sessions import WebSessionView
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.web import ui
from cardvault.web.client_address import actor_for
from cardvault.web.errors import status_of
from cardvault.web.portal.card import HOME
from cardvault.web.portal.steps import Rt, View, security_answers
from cardvault.web.rate_limit import Bucket, per_address
from cardvault.web.ui.qr import qr_data_uri

router = APIRouter(
    prefix="/portal/card",
    tags=["portal"],
    include_in_schema=False,
    dependencies=[per_address(Bucket.PORTAL)],
)
SECRETS = ("current", "passcode", "confirm", "answer1", "answer2", "answer3", "pin")
QUESTION_FIELDS = {"questions": "question1"}


def _session(view: WebSessionView) -> str:
    if not view.signed_in or view.card_session_id is None:
        raise ui.RedirectTo(location=HOME)
    return view.card_session_id


def _who(request: Request, rt: Runtime) -> Actor:
    return actor_for(request, rt)


def _current_missing(
    request: Request, form: ui.Form, template: str, **extra: object
) -> Response | None:
    """Every change asks for the current passcode: without it, the form again (422)."""
    if form.get("current"):
        return None
    form.add_error("current", "Enter your current passcode.")
    return ui.render(request, template, status=422, form=form.shown(), **extra)


def _change(
    request: Request,
    rt: Runtime,
    view: WebSessionView,
    form: ui.Form,
    template: str,
    call: Callable[[Actor, str], str],
    **extra: object,
) -> Response:
    """Run one change; on success back to My card with ``call``'s notice, else the form."""
    session_id = _session(view)
    if (missing := _current_missing(request, form, template, **extra)) is not None:
        return missing
    try:
        notice = call(_who(request, rt), session_id)
    except CardvaultError as exc:
        default = "current" if exc.code in {"wrong_passcode", "card_locked"} else "passcode"
        return ui.refused(
            request, template, form, exc, fields=QUESTION_FIELDS, default=default, **extra
        )
    ui.set_notice(rt, request, notice)
    return ui.redirect(HOME)


# --- passcode ----------------------------------------------------------------------------


@router.get("/passcode")
def passcode_page(request: Request, view: View) -> Response:
    _session(view)
    return ui.render(request, "portal/card_passcode.html", form=ui.Form())


@router.post("/passcode")
async def passcode(request: Request, rt: Rt, view: View) -> Response:
    form = await ui.checked_form(request, view, SECRETS)

    def call(actor: Actor, session_id: str) -> str:
        ended = account.change_passcode(
            rt,
            actor,
            session_id,
            current=form.get("current"),
            passcode=form.get("passcode"),
            confirm=form.get("confirm"),
        )
        others = f" {ended} other sign-in{'s' if ended != 1 else ''} ended." if ended else ""
        return f"Your passcode has been changed.{others} We have emailed you to confirm."

    return await run_in_threadpool(
        _change, request, rt, view, form, "portal/card_passcode.html", call
    )


# --- security questions ------------------------------------------------------------------


def _questions(rt: Runtime) -> list[tuple[str, str]]:
    return [(q, q) for q in rt.settings.security_questions]


@router.get("/questions")
def questions_page(request: Request, rt: Rt, view: View) -> Response:
    _session(view)
    defaults = {f"question{n}": q for n, q in enumerate(rt.settings.security_questions[:3], 1)}
    return ui.render(
        request,
        "portal/card_questions.html",
        form=ui.Form(values=defaults),
        questions=_questions(rt),
    )


@router.post("/questions")
async def questions(request: Request, rt: Rt, view: View) -> Response:
    form = await ui.checked_form(request, view, SECRETS)

    def call(actor: Actor, session_id: str) -> str:
        account.change_questions(
            rt, actor, session_id, current=form.get("current"), answers=security_answers(form)
        )
        return "Your security questions and answers have been changed."

    return await run_in_threadpool(
        _change,
        request,
        rt,
        view,
        form,
        "portal/card_questions.html",
        call,
        questions=_questions(rt),
    )


# --- recovery code -----------------------------------------------------------------------


@router.get("/recovery-code")
def recovery_code_page(request: Request, view: View) -> Response:
    _session(view)
    return ui.render(request, "portal/card_recovery_code.html", form=ui.Form())


@router.post("/recovery-code")
async def recovery_code(request: Request, rt: Rt, view: View) -> Response:
    form = await ui.checked_form(request, view, SECRETS)
    return await run_in_threadpool(_recovery_code, request, rt, view, form)


def _recovery_code(request: Request, rt: Runtime, view: WebSessionView, form: ui.Form) -> Response:
    """The new code is shown in this answer only (never behind a redirect)."""
    session_id = _session(view)
    template = "portal/card_recovery_code.html"
    if (missing := _current_missing(request, form, template)) is not None:
        return missing
    try:
        made = account.renew_recovery_code(
            rt, _who(request, rt), session_id, current=form.get("current")
        )
    except CardvaultError as exc:
        return ui.refused(request, template, form, exc, default="current")
    return ui.render(request, "portal/card_recovery_code_shown.html", code=made.code)


# --- card PIN ----------------------------------------------------------------------------

PIN_TEMPLATE = "portal/card_pin.html"
PIN_DONE = {
    "set": "Your card PIN has been set. We have emailed you to confirm.",
    "changed": "Your card PIN has been changed. We have emailed you to confirm.",
    "unblocked": "Your new card PIN has been set. We have emailed you to confirm.",
}


def _pin_heading(pin: holder_pin.CardPinPage) -> str:
    if pin.blocked:
        return "Set a new card PIN"
    return "Change your card PIN" if pin.pin_set else "Set your card PIN"


def _pin_page(
    request: Request, rt: Runtime, session_id: str, form: ui.Form, status: int = 200
) -> Response:
    pin = holder_pin.page(rt, _who(request, rt), session_id)
    return ui.render(
        request,
        PIN_TEMPLATE,
        status=status,
        form=form,
        pin=pin,
        heading=_pin_heading(pin),
        pin_rule=card_pin_rule(pin.minimum),
    )


@router.get("/pin")
def pin_page(request: Request, rt: Rt, view: View) -> Response:
    return _pin_page(request, rt, _session(view), ui.Form())


@router.post("/pin")
async def pin(request: Request, rt: Rt, view: View) -> Response:
    form = await ui.checked_form(request, view, SECRETS)
    return await run_in_threadpool(_pin, request, rt, view, form)


def _pin(request: Request, rt: Runtime, view: WebSessionView, form: ui.Form) -> Response:
    session_id = _session(view)
    try:
        outcome = holder_pin.set_card_pin(
            rt,
            _who(request, rt),
            session_id,
            current=form.get("current"),
            pin=form.get("pin"),
            confirm=form.get("confirm"),
        )
    except CardvaultError as exc:
        default = "current" if exc.code == "card_pin_wrong" else "pin"
        form.add_exception(exc, default=default)
        return _pin_page(request, rt, session_id, form.shown(), status=status_of(exc))
    ui.set_notice(rt, request, PIN_DONE[outcome])
    return ui.redirect(HOME)


# --- phones and security keys ------------------------------------------------------------


def _own(
    rt: Runtime, request: Request, session_id: str, kind: str, method_id: str
) -> methods.OwnMethod:
    for m in methods.my_methods(rt, _who(request, rt), session_id):
        if m.kind == kind and m.id == method_id and m.removable:
            return m
    raise ui.RedirectTo(location=HOME)


@router.get("/methods/{kind}/{method_id}/remove")
def remove_page(request: Request, rt: Rt, view: View, kind: str, method_id: str) -> Response:
    method = _own(rt, request, _session(view), kind, method_id)
    return ui.render(request, "portal/card_remove.html", method=method, form=ui.Form())


@router.post("/methods/{kind}/{method_id}/remove")
async def remove(request: Request, rt: Rt, view: View, kind: str, method_id: str) -> Response:
    form = await ui.checked_form(request, view, SECRETS)
    return await run_in_threadpool(_remove, request, rt, view, kind, method_id, form)


def _remove(
    request: Request, rt: Runtime, view: WebSessionView, kind: str, method_id: str, form: ui.Form
) -> Response:
    session_id = _session(view)
    method = _own(rt, request, session_id, kind, method_id)
    if form.get("confirm") != "yes":
        form.add_error("confirm", "Tick the box to confirm the removal.")
    if not form.get("current"):
        form.add_error("current", "Enter your current passcode.")
    if not form.ok:
        return ui.render(
            request, "portal/card_remove.html", status=422, method=method, form=form.shown()
        )
    try:
        name = methods.remove(
            rt,
            _who(request, rt),
            session_id,
            kind=kind,
            method_id=method_id,
            current=form.get("current"),
        )
    except CardvaultError as exc:
        return ui.refused(
            request, "portal/card_remove.html", form, exc, default="current", method=method
        )
    ui.set_notice(rt, request, f"Removed: {name}. Your Registration Authority has been told.")
    return ui.redirect(HOME)


@router.get("/pair")
def pair_page(request: Request, view: View) -> Response:
    _session(view)
    return ui.render(request, "portal/card_pair.html", form=ui.Form(), offer=None, qr=None)


@router.post("/pair")
async def pair(request: Request, rt: Rt, view: View) -> Response:
    form = await ui.checked_form(request, view, SECRETS)
    return await run_in_threadpool(_pair, request, rt, view, form)


def _pair(request: Request, rt: Runtime, view: WebSessionView, form: ui.Form) -> Response:
    """A new single-use pairing QR, shown in this answer only."""
    session_id = _session(view)
    try:
        offer = methods.start_pairing(rt, _who(request, rt), session_id)
    except CardvaultError as exc:
        return ui.refused(
            request, "portal/card_pair.html", form, exc, default="pair", offer=None, qr=None
        )
    return ui.render(
        request, "portal/card_pair.html", form=ui.Form(), offer=offer, qr=qr_data_uri(offer.uri)
    )


@router.get("/security-key")
def security_key_page(request: Request, view: View) -> Response:
    _session(view)
    return ui.render(request, "portal/card_security_key.html", form=ui.Form())


@router.post("/api/security-key/begin")
def security_key_begin(
    request: Request, rt: Rt, view: View, x_csrf_token: Annotated[str | None, Header()] = None
) -> dict[str, Any]:
    """Options for ``navigator.credentials.create`` (for ``static/ra/webauthn.js``)."""
    ui.check_csrf(view, header=x_csrf_token)
    started = methods.begin_key(rt, _who(request, rt), _session(view))
    return ui.keep_ceremony(rt, view, "card_ceremony", started)


@router.post("/api/security-key/complete")
async def security_key_complete(
    request: Request, rt: Rt, view: View, x_csrf_token: Annotated[str | None, Header()] = None
) -> dict[str, Any]:
    ui.check_csrf(view, header=x_csrf_token)
    session_id = _session(view)
    key = await ui.read_new_key(request)
    ceremony = ui.take_ceremony(rt, view, "card_ceremony")
    added = await run_in_threadpool(
        functools.partial(
            methods.complete_key,
            rt,
            _who(request, rt),
            session_id,
            ceremony_id=ceremony,
            response=key.credential,
            nickname=key.nickname,
        )
    )
    ui.set_notice(rt, request, f"Security key '{added.label}' registered.")
    return {"next": HOME}


# --- recent use --------------------------------------------------------------------------


@router.get("/activity")
def activity_page(request: Request, rt: Rt, view: View) -> Response:
    lines = activity.recent(rt, _who(request, rt), _session(view))
    return ui.render(request, "portal/card_activity.html", lines=lines, days=activity.DAYS)
