"""Forgotten passcode, and the reset behind a link: questions → second factor → passcode.

The second factor's pages are in :mod:`cardvault.web.portal.reset_factor`."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from cardvault.errors import AuthenticationFailed, InvalidInput
from cardvault.services.rate_limits import check as rate_limits
from cardvault.services.recovery import new_passcode, reset_links
from cardvault.services.recovery import reset as recovery
from cardvault.services.recovery.errors import (
    LinkInvalid,
    LinkUsed,
    RecoveryBlocked,
    RecoveryNotAllowed,
    RecoveryStepInvalid,
)
from cardvault.web import ui
from cardvault.web.client_address import actor_for
from cardvault.web.errors import status_of
from cardvault.web.portal.steps import (
    Rt,
    View,
    clear_step,
    holder,
    in_step,
    link_page,
    link_problem,
    set_step,
    step_of,
)
from cardvault.web.rate_limit import Bucket, per_address

router = APIRouter(prefix="/portal", tags=["portal"], include_in_schema=False)
PORTAL = [per_address(Bucket.PORTAL)]

#: errors that end a reset: the link or the card no longer allows it
ENDING = (
    LinkInvalid,
    LinkUsed,
    RecoveryBlocked,
    RecoveryNotAllowed,
    RecoveryStepInvalid,
)
ANSWER_FIELDS = ("answer1", "answer2", "answer3", "recovery_code")


def _dev_outbox(rt: Rt) -> bool:
    return rt.settings.development and rt.settings.mail_mode == "outbox"


@router.get("")
def start(request: Request, rt: Rt, view: View) -> Response:
    return ui.render(request, "portal/start.html", dev_outbox=_dev_outbox(rt))


@router.post("/forgotten", dependencies=[per_address(Bucket.RESET)])
async def forgotten(request: Request, rt: Rt, view: View) -> Response:
    form = await ui.checked_form(request, view)
    identifier = form.get("identifier")
    if identifier.strip():  # an empty form is only a validation error
        await run_in_threadpool(rate_limits.check_identifier, rt, Bucket.RESET, "email", identifier)
    try:
        await run_in_threadpool(reset_links.request_reset, rt, actor_for(request, rt), identifier)
    except InvalidInput as exc:
        form.add_exception(exc, default="identifier")
        return ui.render(
            request, "portal/start.html", status=422, form=form, dev_outbox=_dev_outbox(rt)
        )
    return ui.render(request, "portal/forgotten_sent.html", dev_outbox=_dev_outbox(rt))


@router.get("/reset-done")
def done(request: Request, view: View) -> Response:
    return ui.render(request, "portal/reset_done.html")


# --- step 1: the questions ------------------------------------------------------------------


def _questions(request: Request, rt: Rt, token: str, form: ui.Form, status: int = 200) -> Response:
    opened = partial(recovery.open_reset, rt, token)
    return link_page(request, "portal/reset_questions.html", token, form, status, opened, ENDING)


@router.get("/reset/{token}", dependencies=PORTAL)
def questions(request: Request, rt: Rt, view: View, token: str) -> Response:
    return _questions(request, rt, token, ui.Form())


@router.post("/reset/{token}", dependencies=PORTAL)
async def answer(request: Request, rt: Rt, view: View, token: str) -> Response:
    form = await ui.checked_form(request, view, secrets=ANSWER_FIELDS)
    answers = {n: form.get(f"answer{n}") for n in (1, 2, 3)}
    try:
        step = await run_in_threadpool(
            recovery.answer,
            rt,
            holder(request, rt),
            token,
            answers=answers,
            recovery_code=form.get("recovery_code") or None,
        )
    except ENDING as exc:
        return link_problem(request, exc)
    except (InvalidInput, AuthenticationFailed) as exc:
        form.add_exception(exc, default="answer1")
        return _questions(request, rt, token, form.shown(), status=status_of(exc))
    return set_step(ui.redirect(next_page(token, step.step)), step.transaction_id, step.key)


def next_page(token: str, step: str) -> str:
    page = "factor" if step == recovery.STEP_FACTOR else "passcode"
    return f"/portal/reset/{token}/{page}"


def current(request: Request, rt: Rt, token: str, expected: str) -> recovery.Progress:
    """This browser's reset, if it is at step ``expected`` (else a redirect to its step)."""
    txn_id, key = step_of(request)
    progress = recovery.current_step(rt, token, txn_id, key)
    if progress.step != expected:
        raise ui.RedirectTo(location=next_page(token, progress.step))
    return progress


# --- step 3: the new passcode ---------------------------------------------------------------


@router.get("/reset/{token}/passcode", dependencies=PORTAL)
def passcode_page(request: Request, rt: Rt, view: View, token: str) -> Response:
    try:
        current(request, rt, token, recovery.STEP_PASSCODE)
    except ENDING as exc:
        return link_problem(request, exc, restart=f"/portal/reset/{token}")
    return ui.render(request, "portal/reset_passcode.html", form=ui.Form(), token=token)


@router.post("/reset/{token}/passcode", dependencies=PORTAL)
async def passcode(request: Request, rt: Rt, view: View, token: str) -> Response:
    form = await ui.checked_form(request, view, secrets=("passcode", "confirm"))
    try:
        await in_step(
            request,
            rt,
            token,
            new_passcode.set_passcode,
            passcode=form.get("passcode"),
            confirm=form.get("confirm"),
        )
    except ENDING as exc:
        return link_problem(request, exc, restart=f"/portal/reset/{token}")
    except InvalidInput as exc:
        form.add_exception(exc, default="passcode")
        return ui.render(
            request, "portal/reset_passcode.html", status=422, form=form.shown(), token=token
        )
    return clear_step(ui.redirect("/portal/reset-done"))
