"""Finishing an invitation: the SMS code, then the passcode and three security questions,
then the second factor (``invitation_factor``)."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from cardvault.errors import AuthenticationFailed, InvalidInput
from cardvault.services.cards import invitations
from cardvault.services.holders import setup as factor_setup
from cardvault.services.recovery.errors import LinkInvalid, LinkUsed, RecoveryStepInvalid
from cardvault.web import ui
from cardvault.web.errors import status_of
from cardvault.web.portal.invitation_factor import remember_card
from cardvault.web.portal.steps import (
    Rt,
    View,
    clear_step,
    holder,
    in_step,
    link_page,
    link_problem,
    security_answers,
    set_step,
    step_of,
)
from cardvault.web.rate_limit import Bucket, per_address

router = APIRouter(
    prefix="/portal/invitation",
    tags=["portal"],
    include_in_schema=False,
    dependencies=[per_address(Bucket.PORTAL)],
)

ENDING = (LinkInvalid, LinkUsed, RecoveryStepInvalid)
SECRETS = ("passcode", "confirm", "answer1", "answer2", "answer3", "card_pin", "card_pin_confirm")
#: service field names → this form's names
FIELDS = {"questions": "question1"}


def _code_page(request: Request, rt: Rt, token: str, form: ui.Form, status: int = 200) -> Response:
    opened = partial(invitations.open_invitation, rt, token)
    return link_page(request, "portal/invitation_code.html", token, form, status, opened, ENDING)


@router.get("/{token}")
def code_page(request: Request, rt: Rt, view: View, token: str) -> Response:
    return _code_page(request, rt, token, ui.Form())


@router.post("/{token}")
async def code(request: Request, rt: Rt, view: View, token: str) -> Response:
    form = await ui.checked_form(request, view, secrets=("code",))
    actor = holder(request, rt)
    try:
        accepted = await run_in_threadpool(
            invitations.confirm_code, rt, actor, token, form.get("code")
        )
    except ENDING as exc:
        return link_problem(request, exc)
    except (InvalidInput, AuthenticationFailed) as exc:
        form.add_exception(exc, default="code")
        return _code_page(request, rt, token, form.shown(), status=status_of(exc))
    response = ui.redirect(f"/portal/invitation/{token}/setup")
    return set_step(response, accepted.transaction_id, accepted.key)


def _setup(request: Request, rt: Rt, token: str, form: ui.Form, status: int = 200) -> Response:
    questions = [(q, q) for q in rt.settings.security_questions]
    return ui.render(
        request,
        "portal/invitation_setup.html",
        status=status,
        form=form,
        token=token,
        questions=questions,
        pin_rule=invitations.card_pin_rule(rt, token),
    )


@router.get("/{token}/setup")
def setup_page(request: Request, rt: Rt, view: View, token: str) -> Response:
    txn_id, key = step_of(request)
    try:
        invitations.check_step(rt, token, txn_id, key)
    except ENDING as exc:
        return link_problem(request, exc, restart=f"/portal/invitation/{token}")
    defaults = {f"question{n}": q for n, q in enumerate(rt.settings.security_questions[:3], 1)}
    return _setup(request, rt, token, ui.Form(values=defaults))


def _card_pin(form: ui.Form) -> tuple[str, str] | None:
    """The card PIN for smartcard software, if the holder chose one now (it is optional)."""
    pin, again = form.get("card_pin").strip(), form.get("card_pin_confirm").strip()
    return (pin, again) if pin or again else None


@router.post("/{token}/setup")
async def setup(request: Request, rt: Rt, view: View, token: str) -> Response:
    form = await ui.checked_form(request, view, secrets=SECRETS)
    try:
        done = await in_step(
            request,
            rt,
            token,
            invitations.complete,
            passcode=form.get("passcode"),
            confirm=form.get("confirm"),
            answers=security_answers(form),
            want_recovery_code=form.get("recovery_code") == "yes",
            card_pin=_card_pin(form),
        )
    except ENDING as exc:
        return link_problem(request, exc, restart=f"/portal/invitation/{token}")
    except InvalidInput as exc:
        form.add_exception(exc, fields=FIELDS, default="passcode")
        return _setup(request, rt, token, form.shown(), status=422)
    # the card is active; it is ready once it has a second factor (the next page)
    remember_card(rt, view, done.serial, done.organisation, done.holder_name)
    response = ui.render(
        request,
        "portal/invitation_factor.html",
        form=ui.Form(),
        choices=factor_setup.choices(rt, done.serial, done.organisation),
        name=done.holder_name,
        recovery_code=done.recovery_code,
    )
    return clear_step(response)
