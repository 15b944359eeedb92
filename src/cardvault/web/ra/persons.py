"""Finding a person, their page, issuing a card, enrolling its holder (fully or by invitation)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from cardvault.errors import CardvaultError, InvalidInput
from cardvault.services.cards import enrolment
from cardvault.services.piv import card_pin
from cardvault.services.ra import cards as ra_cards
from cardvault.services.ra import persons as ra_persons
from cardvault.services.ra.actions import RaContext
from cardvault.services.signin import web_sessions
from cardvault.services.signin.web_sessions import WebSessionView
from cardvault.services.system.runtime import Runtime
from cardvault.web import ui
from cardvault.web.errors import status_of
from cardvault.web.ra.context import Agent, Rt, View, Viewer, person_url, require_recent_sign_in

router = APIRouter(prefix="/ra/persons", tags=["vRA Manager"], include_in_schema=False)
ENROL_SECRETS = (
    "issuance_passcode",
    "passcode",
    "passcode_confirm",
    "answer1",
    "answer2",
    "answer3",
    "card_pin",
    "card_pin_confirm",
)
OWN = "__own__"
#: the service's passcode field is the issuance passcode on these pages
ISSUANCE = {"passcode": "issuance_passcode"}
PASSCODE = "issuance_passcode"


def already_sent(
    rt: Runtime,
    request: Request,
    view: WebSessionView,
    form: ui.Form,
    url: str,
    notice: str = "That form was already sent; here is the result.",
) -> Response | None:
    """A second submission of the same form shows the result instead of doing it again."""
    if web_sessions.claim_form(rt, view, form.get("form_id")):
        return None
    ui.set_notice(rt, request, notice)
    return ui.redirect(url)


def person_form(
    request: Request,
    rt: Runtime,
    view: WebSessionView,
    ctx: RaContext,
    user_id: str,
    form: ui.Form,
    template: str,
    act: Callable[[], str],
    *,
    default: str,
    fields: Mapping[str, str] | None = None,
) -> Response:
    """A form on a person's page, done once: ``act`` says what it did, shown on their page;
    what the service refuses shows ``template`` again (see :func:`ui.refused`)."""
    info = ra_persons.detail(rt, ctx, user_id)
    if (done := already_sent(rt, request, view, form, person_url(user_id))) is not None:
        return done
    try:
        notice = act()
    except CardvaultError as exc:
        return ui.refused(
            request, template, form, exc, fields=fields, default=default, info=info, ctx=ctx
        )
    ui.set_notice(rt, request, notice)
    return ui.redirect(person_url(user_id))


@router.get("")
def find(request: Request, rt: Rt, ctx: Viewer, q: str = "") -> Response:
    form = ui.Form(values={"q": q})
    results: list[ra_persons.PersonRow] = []
    try:
        results = ra_persons.find(rt, ctx, q)
    except InvalidInput as exc:
        form.add_exception(exc, default="q")
    return ui.render(
        request, "ra/find.html", form=form, results=results, searched=bool(q.strip()), ctx=ctx
    )


@router.get("/{user_id}")
def show(request: Request, rt: Rt, ctx: Viewer, user_id: str) -> Response:
    info = ra_persons.detail(rt, ctx, user_id)
    return ui.render(request, "ra/person.html", info=info, ctx=ctx)


# --- issue ------------------------------------------------------------------------------


@router.get("/{user_id}/issue")
def issue_page(request: Request, rt: Rt, ctx: Agent, user_id: str) -> Response:
    require_recent_sign_in(request, rt)
    return ui.render(request, "ra/issue.html", info=ra_persons.detail(rt, ctx, user_id), ctx=ctx)


@router.post("/{user_id}/issue")
async def issue(request: Request, rt: Rt, view: View, ctx: Agent, user_id: str) -> Response:
    form = await ui.checked_form(request, view, ("issuance_passcode", "confirm"))
    return await run_in_threadpool(_issue, request, rt, view, ctx, user_id, form)


def _issue(
    request: Request, rt: Runtime, view: WebSessionView, ctx: RaContext, user_id: str, form: ui.Form
) -> Response:
    require_recent_sign_in(request, rt)

    def issue() -> str:
        card = ra_cards.issue(
            rt,
            ctx,
            user_id,
            issuance_passcode=form.get("issuance_passcode"),
            confirm=form.get("confirm"),
        )
        return f"Card {card.serial} issued. Next, enrol the holder."

    page = "ra/issue.html"
    return person_form(
        request, rt, view, ctx, user_id, form, page, issue, fields=ISSUANCE, default=PASSCODE
    )


# --- enrol (full) -----------------------------------------------------------------------


def _questions(rt: Runtime) -> list[tuple[str, str]]:
    return [(q, q) for q in rt.settings.security_questions] + [(OWN, "Write my own question")]


def _enrol_page(
    request: Request, rt: Runtime, ctx: RaContext, user_id: str, form: ui.Form, status: int = 200
) -> Response:
    info = ra_persons.detail(rt, ctx, user_id)
    return ui.render(
        request,
        "ra/enrol.html",
        status=status,
        info=info,
        form=form,
        questions=_questions(rt),
        ctx=ctx,
        own=OWN,
        pin_rule=card_pin.rule_for(rt, ctx.organisation_id),
    )


@router.get("/{user_id}/enrol")
def enrol_page(request: Request, rt: Rt, ctx: Agent, user_id: str) -> Response:
    info = ra_persons.detail(rt, ctx, user_id)
    values = {"email": info.person.email or "", "phone": info.person.phone or ""}
    return _enrol_page(request, rt, ctx, user_id, ui.Form(values=values))


@router.post("/{user_id}/enrol")
async def enrol(request: Request, rt: Rt, view: View, ctx: Agent, user_id: str) -> Response:
    form = await ui.checked_form(request, view, ENROL_SECRETS)
    return await run_in_threadpool(_enrol, request, rt, view, ctx, user_id, form)


def _answers(form: ui.Form) -> tuple[enrolment.SecurityAnswer, ...]:
    out = []
    for n in (1, 2, 3):
        chosen = form.get(f"question{n}")
        question = form.get(f"own{n}") if chosen == OWN else chosen
        out.append(enrolment.SecurityAnswer(question=question, answer=form.get(f"answer{n}")))
    return tuple(out)


def _enrol(
    request: Request, rt: Runtime, view: WebSessionView, ctx: RaContext, user_id: str, form: ui.Form
) -> Response:
    data = ra_cards.EnrolForm(
        email=form.get("email"),
        phone=form.get("phone"),
        issuance_passcode=form.get("issuance_passcode"),
        passcode=form.get("passcode"),
        passcode_confirm=form.get("passcode_confirm"),
        answers=_answers(form),
        recovery_code=form.get("recovery_code") == "yes",
        card_pin=form.get("card_pin").strip(),
        card_pin_confirm=form.get("card_pin_confirm").strip(),
    )
    own = {f"question{n}": f"own{n}" for n in (1, 2, 3) if form.get(f"question{n}") == OWN}
    for problem in ra_cards.enrolment_problems(rt, ctx, user_id, data):
        form.add_exception(problem, fields=own)
    if not form.ok:
        return _enrol_page(request, rt, ctx, user_id, form.shown(), 422)
    if (done := already_sent(rt, request, view, form, person_url(user_id))) is not None:
        return done
    try:
        result = ra_cards.enrol(rt, ctx, user_id, data)
    except CardvaultError as exc:
        form.add_exception(exc, fields={**ISSUANCE, **own}, default=PASSCODE)
        return _enrol_page(request, rt, ctx, user_id, form.shown(), status_of(exc))
    if result.recovery_code:
        return ui.render(
            request, "ra/recovery_code.html", code=result.recovery_code, user_id=user_id
        )
    ui.set_notice(rt, request, f"Card {result.serial} is enrolled and active.")
    return ui.redirect(person_url(user_id))


# --- invite (partial enrolment) ---------------------------------------------------------


@router.get("/{user_id}/invite")
def invite_page(request: Request, rt: Rt, ctx: Agent, user_id: str) -> Response:
    info = ra_persons.detail(rt, ctx, user_id)
    values = {"email": info.person.email or "", "phone": info.person.phone or ""}
    return ui.render(request, "ra/invite.html", info=info, form=ui.Form(values=values), ctx=ctx)


@router.post("/{user_id}/invite")
async def invite(request: Request, rt: Rt, view: View, ctx: Agent, user_id: str) -> Response:
    form = await ui.checked_form(request, view, ("issuance_passcode",))
    return await run_in_threadpool(_invite, request, rt, view, ctx, user_id, form)


def _invite(
    request: Request, rt: Runtime, view: WebSessionView, ctx: RaContext, user_id: str, form: ui.Form
) -> Response:
    def invite() -> str:
        sent = ra_cards.invite(
            rt,
            ctx,
            user_id,
            email=form.get("email"),
            phone=form.get("phone"),
            issuance_passcode=form.get("issuance_passcode"),
        )
        return (
            f"Invitation sent to {sent.email}, with a code by text message to {sent.phone}. "
            f"The link works once and expires in {sent.expires_in_days} days."
        )

    page = "ra/invite.html"
    return person_form(
        request, rt, view, ctx, user_id, form, page, invite, fields=ISSUANCE, default=PASSCODE
    )
