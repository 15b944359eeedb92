"""Associating authentication methods with a card for the RA's organisation, and removing them."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from cardvault.errors import CardvaultError
from cardvault.services.ra import methods as ra_methods
from cardvault.services.ra import persons as ra_persons
from cardvault.services.ra.actions import RaContext
from cardvault.services.signin.web_sessions import WebSessionView
from cardvault.services.system.runtime import Runtime
from cardvault.web import ui
from cardvault.web.errors import status_of
from cardvault.web.ra.context import Agent, Rt, View, person_url, require_recent_sign_in
from cardvault.web.ra.persons import already_sent, person_form
from cardvault.web.ui.qr import qr_data_uri

router = APIRouter(prefix="/ra/persons", tags=["vRA Manager"], include_in_schema=False)
SENT_TWICE = (
    "That pairing code was already shown and cannot be shown again. "
    "If the holder has not paired yet, show a new one."
)


def _page(
    request: Request,
    rt: Runtime,
    ctx: RaContext,
    user_id: str,
    template: str,
    status: int = 200,
    **extra: object,
) -> Response:
    info = ra_persons.detail(rt, ctx, user_id)
    return ui.render(request, template, status=status, info=info, ctx=ctx, **extra)


# --- AD account and HR card: one form, one association ----------------------------------

#: makes the association from the posted form and names what it associated
Add = Callable[[Runtime, RaContext, str, ui.Form], str]


def _one_form_method(path: str, template: str, field: str, add: Add) -> None:
    """The page and the form of a method associated in one step."""

    @router.get(f"/{{user_id}}/methods/{path}")
    def page(request: Request, rt: Rt, ctx: Agent, user_id: str) -> Response:
        return _page(request, rt, ctx, user_id, template)

    @router.post(f"/{{user_id}}/methods/{path}")
    async def post(request: Request, rt: Rt, view: View, ctx: Agent, user_id: str) -> Response:
        form = await ui.checked_form(request, view)
        return await run_in_threadpool(
            person_form,
            request,
            rt,
            view,
            ctx,
            user_id,
            form,
            template,
            lambda: f"{add(rt, ctx, user_id, form)} associated.",
            default=field,
        )


def _add_ad_account(rt: Runtime, ctx: RaContext, user_id: str, form: ui.Form) -> str:
    account, sid = form.get("account"), form.get("sid") or None
    return f"AD account {ra_methods.add_ad_account(rt, ctx, user_id, account, sid).lookup_key}"


def _add_hr_card(rt: Runtime, ctx: RaContext, user_id: str, form: ui.Form) -> str:
    uid, label = form.get("uid"), form.get("label")
    return f"HR card {ra_methods.add_hr_card(rt, ctx, user_id, uid, label).lookup_key}"


_one_form_method("ad", "ra/method_ad.html", "account", _add_ad_account)
_one_form_method("hr-card", "ra/method_hr.html", "uid", _add_hr_card)


# --- authenticator app (TOTP) ---------------------------------------------------------------


@router.get("/{user_id}/methods/totp")
def totp_start_page(request: Request, rt: Rt, ctx: Agent, user_id: str) -> Response:
    return _page(request, rt, ctx, user_id, "ra/method_totp_start.html")


@router.post("/{user_id}/methods/totp")
async def totp_start(request: Request, rt: Rt, view: View, ctx: Agent, user_id: str) -> Response:
    form = await ui.checked_form(request, view)
    return await run_in_threadpool(_totp_start, request, rt, view, ctx, user_id, form)


def _totp_start(
    request: Request, rt: Runtime, view: WebSessionView, ctx: RaContext, user_id: str, form: ui.Form
) -> Response:
    ra_persons.detail(rt, ctx, user_id)
    if (done := already_sent(rt, request, view, form, person_url(user_id))) is not None:
        return done
    try:
        pending = ra_methods.start_totp(rt, ctx, user_id, form.get("label"))
    except CardvaultError as exc:
        form.add_exception(exc, default="label")
        return _page(
            request, rt, ctx, user_id, "ra/method_totp_start.html", status_of(exc), form=form
        )
    return ui.redirect(person_url(user_id, f"/methods/totp/{pending.association_id}"))


@router.get("/{user_id}/methods/totp/{association_id}")
def totp_confirm_page(
    request: Request, rt: Rt, ctx: Agent, user_id: str, association_id: str
) -> Response:
    return _totp_confirm_page(request, rt, ctx, user_id, association_id, ui.Form())


def _totp_confirm_page(
    request: Request,
    rt: Runtime,
    ctx: RaContext,
    user_id: str,
    association_id: str,
    form: ui.Form,
    status: int = 200,
) -> Response:
    pending = ra_methods.pending_totp(rt, ctx, user_id, association_id)
    return _page(
        request,
        rt,
        ctx,
        user_id,
        "ra/method_totp_confirm.html",
        status,
        form=form,
        pending=pending,
        qr=qr_data_uri(pending.uri),
        key=" ".join(pending.secret[i : i + 4] for i in range(0, len(pending.secret), 4)),
    )


@router.post("/{user_id}/methods/totp/{association_id}")
async def totp_confirm(
    request: Request, rt: Rt, view: View, ctx: Agent, user_id: str, association_id: str
) -> Response:
    form = await ui.checked_form(request, view, ("code",))
    return await run_in_threadpool(_totp_confirm, request, rt, ctx, user_id, association_id, form)


def _totp_confirm(
    request: Request, rt: Runtime, ctx: RaContext, user_id: str, association_id: str, form: ui.Form
) -> Response:
    try:
        ra_methods.confirm_totp(rt, ctx, user_id, association_id, form.get("code"))
    except CardvaultError as exc:
        form.add_exception(exc, default="code")
        return _totp_confirm_page(
            request, rt, ctx, user_id, association_id, form.shown(), status_of(exc)
        )
    ui.set_notice(rt, request, "The authenticator app is confirmed and can now be used to sign in.")
    return ui.redirect(person_url(user_id))


# --- phones: authenticator app and MIA pairing -------------------------------------------


def _application(requested: str) -> str:
    return "mia" if requested == "mia" else "authenticator"


@router.get("/{user_id}/methods/device")
def device_page(
    request: Request, rt: Rt, ctx: Agent, user_id: str, application: str = "authenticator"
) -> Response:
    """What pairing is, and a button for a code: opening the page makes no code."""
    return _device_page(request, rt, ctx, user_id, _application(application))


@router.post("/{user_id}/methods/device")
async def device(
    request: Request,
    rt: Rt,
    view: View,
    ctx: Agent,
    user_id: str,
    application: str = "authenticator",
) -> Response:
    form = await ui.checked_form(request, view)
    return await run_in_threadpool(
        _device, request, rt, view, ctx, user_id, _application(application), form
    )


def _device(
    request: Request,
    rt: Runtime,
    view: WebSessionView,
    ctx: RaContext,
    user_id: str,
    application: str,
    form: ui.Form,
) -> Response:
    """A new single-use pairing code, shown once in this answer (never behind a redirect)."""
    ra_persons.detail(rt, ctx, user_id)
    page = person_url(user_id, f"/methods/device?application={application}")
    if (done := already_sent(rt, request, view, form, page, notice=SENT_TWICE)) is not None:
        return done
    try:
        offer = ra_methods.pairing_offer(rt, ctx, user_id, application)
    except CardvaultError as exc:
        form.add_exception(exc)
        return _device_page(request, rt, ctx, user_id, application, form, status_of(exc))
    return _device_page(request, rt, ctx, user_id, application, offer=offer)


def _device_page(
    request: Request,
    rt: Runtime,
    ctx: RaContext,
    user_id: str,
    application: str,
    form: ui.Form | None = None,
    status: int = 200,
    offer: ra_methods.PairingOffer | None = None,
) -> Response:
    return _page(
        request,
        rt,
        ctx,
        user_id,
        "ra/method_device.html",
        status,
        form=form or ui.Form(),
        application=application,
        offer=offer,
        qr=qr_data_uri(offer.uri) if offer else None,
    )


# --- FIDO2 key (the ceremony runs in the page's script; see webauthn_api) -------------------


@router.get("/{user_id}/methods/fido2")
def security_key_page(request: Request, rt: Rt, ctx: Agent, user_id: str) -> Response:
    return _page(request, rt, ctx, user_id, "ra/method_security_key.html")


# --- removing any association -------------------------------------------------------------


@router.get("/{user_id}/methods/{association_id}/remove")
def remove_page(
    request: Request, rt: Rt, ctx: Agent, user_id: str, association_id: str
) -> Response:
    assoc = ra_persons.association_view(ra_methods.association(rt, ctx, user_id, association_id))
    require_recent_sign_in(request, rt)
    return _page(request, rt, ctx, user_id, "ra/method_remove.html", assoc=assoc)


@router.post("/{user_id}/methods/{association_id}/remove")
async def remove(
    request: Request, rt: Rt, view: View, ctx: Agent, user_id: str, association_id: str
) -> Response:
    form = await ui.checked_form(request, view)
    return await run_in_threadpool(_remove, request, rt, ctx, user_id, association_id, form)


def _remove(
    request: Request, rt: Runtime, ctx: RaContext, user_id: str, association_id: str, form: ui.Form
) -> Response:
    require_recent_sign_in(request, rt)
    if form.get("confirm") != "yes":
        assoc = ra_persons.association_view(
            ra_methods.association(rt, ctx, user_id, association_id)
        )
        form.add_error("confirm", "Tick the box to confirm the removal.")
        return _page(
            request, rt, ctx, user_id, "ra/method_remove.html", 422, assoc=assoc, form=form
        )
    removed = ra_methods.remove(rt, ctx, user_id, association_id)
    ui.set_notice(rt, request, f"Removed: {removed.label or removed.method}.")
    return ui.redirect(person_url(user_id))
