"""Locking, unlocking, suspending, lifting a suspension and revoking a card: each asks for
a reason and a confirmation (revoking also for the RFC 5280 reason relying parties see)."""

from __future__ import annotations

from typing import TypedDict

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from cardvault.errors import CardvaultError, NotFound
from cardvault.services.ra import cards as ra_cards
from cardvault.services.ra import certificates as ra_certificates
from cardvault.services.ra import persons as ra_persons
from cardvault.services.ra.actions import RaContext
from cardvault.services.signin.web_sessions import WebSessionView
from cardvault.services.system.runtime import Runtime
from cardvault.web import ui
from cardvault.web.ra.context import Agent, Rt, View, person_url, require_recent_sign_in
from cardvault.web.ra.persons import already_sent

router = APIRouter(prefix="/ra/persons", tags=["vRA Manager"], include_in_schema=False)

ACTIONS = {
    "lock": (
        "Lock the card",
        "Nobody can use the card until it is unlocked. Its sessions end now.",
        "warning",
    ),
    "unlock": (
        "Unlock the card",
        "The card returns to the status it had before the lock. The holder is sent an "
        "email with a link to set a new passcode.",
        "primary",
    ),
    "suspend": (
        "Suspend the card",
        "Its certificates are put on hold (relying parties see them as revoked, reason "
        "certificateHold) and it cannot sign in until the suspension is lifted. Its keys stay.",
        "warning",
    ),
    "resume": (
        "Lift the suspension",
        "The card returns to the status it had, and its certificates are good again.",
        "primary",
    ),
    "renew": (
        "Renew the certificates",
        "The card's keys get new certificates, valid for the organisation's full period and "
        "carrying its current AD name; the old ones are revoked as superseded. New keys are "
        "made when the holder renews from their own session.",
        "primary",
    ),
    "revoke": (
        "Revoke the card",
        "The card's keys are destroyed and its certificates revoked. This cannot be undone.",
        "warning",
    ),
}


#: what relying parties are told when a card is revoked (RFC 5280 reason codes)
REASON_CODES = [
    ("unspecified", "No reason given to relying parties"),
    ("keyCompromise", "The card may have been misused (key compromise)"),
    ("affiliationChanged", "The holder has left or moved (affiliation changed)"),
    ("superseded", "Replaced by another card (superseded)"),
    ("cessationOfOperation", "No longer needed (cessation of operation)"),
    ("privilegeWithdrawn", "The holder may no longer use it (privilege withdrawn)"),
]


def _action(action: str) -> tuple[str, str, str]:
    if action not in ACTIONS:
        raise NotFound("Page not found.")
    return ACTIONS[action]


class _ActionPage(TypedDict):
    """What the confirmation page of an action shows, asked for or refused."""

    info: ra_persons.PersonDetail
    action: str
    title: str
    explanation: str
    kind: str
    ctx: RaContext
    reason_codes: list[tuple[str, str]]


def _page(rt: Runtime, ctx: RaContext, user_id: str, action: str) -> _ActionPage:
    title, explanation, kind = _action(action)
    info = ra_persons.detail(rt, ctx, user_id)
    return _ActionPage(info=info, action=action, title=title, explanation=explanation,
                       kind=kind, ctx=ctx, reason_codes=REASON_CODES)  # fmt: skip


@router.get("/{user_id}/card/{action}")
def confirm_page(request: Request, rt: Rt, ctx: Agent, user_id: str, action: str) -> Response:
    page = _page(rt, ctx, user_id, action)
    require_recent_sign_in(request, rt)
    return ui.render(request, "ra/card_action.html", **page)


@router.post("/{user_id}/card/{action}")
async def act(
    request: Request, rt: Rt, view: View, ctx: Agent, user_id: str, action: str
) -> Response:
    _action(action)
    form = await ui.checked_form(request, view)
    return await run_in_threadpool(_act, request, rt, view, ctx, user_id, action, form)


def _act(
    request: Request,
    rt: Runtime,
    view: WebSessionView,
    ctx: RaContext,
    user_id: str,
    action: str,
    form: ui.Form,
) -> Response:
    page = _page(rt, ctx, user_id, action)
    require_recent_sign_in(request, rt)
    if (done := already_sent(rt, request, view, form, person_url(user_id))) is not None:
        return done
    reason = form.get("reason") if action != "renew" else ""
    try:
        if action == "lock":
            ra_cards.lock(rt, ctx, user_id, reason=reason)
            notice = "The card is locked."
        elif action == "unlock":
            sent = ra_cards.unlock(rt, ctx, user_id, reason=reason)
            notice = "The card is unlocked." + (
                " The holder has been sent a link to set a new passcode." if sent else ""
            )
        elif action == "suspend":
            ra_certificates.suspend(rt, ctx, user_id, reason=reason)
            notice = "The card is suspended; its certificates are on hold."
        elif action == "renew":
            ra_certificates.renew(rt, ctx, user_id)
            notice = "The card's certificates are renewed."
        elif action == "resume":
            ra_certificates.resume(rt, ctx, user_id, reason=reason)
            notice = "The suspension is lifted; the card's certificates are good again."
        else:
            code = form.get("reason_code") or "unspecified"
            ra_cards.revoke(rt, ctx, user_id, reason=reason, reason_code=code)
            notice = "The card is revoked; its keys no longer exist."
    except CardvaultError as exc:
        return ui.refused(request, "ra/card_action.html", form, exc, default="reason", **page)
    ui.set_notice(rt, request, notice)
    return ui.redirect(person_url(user_id))
