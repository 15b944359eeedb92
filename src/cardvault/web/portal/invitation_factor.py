"""An invitation's last step on the portal: the holder's second factor, then "ready".

After the passcode and the questions (``invitation.setup``), this browser's web session
keeps the card it just enrolled for ``setup.SETUP_MINUTES``; these pages let the holder
pair their phone (a QR here, the passcode typed in the app), register a security key
(``static/ra/webauthn.js`` calls the JSON endpoints below), or, where the organisation
allows it, leave it to their RA in person. Only then does the page say the card is ready.
Every step that changes the session is a POST with the CSRF token: registering the key ends
the setup itself, and the "ready" page the script then opens only shows the result.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from cardvault.errors import CardvaultError, InvalidInput, NotFound
from cardvault.services.holders import setup
from cardvault.services.signin import web_sessions
from cardvault.services.signin.web_sessions import WebSessionView
from cardvault.services.system.runtime import Runtime
from cardvault.web import ui
from cardvault.web.client_address import actor_for
from cardvault.web.errors import status_of
from cardvault.web.portal.steps import Rt, View
from cardvault.web.rate_limit import Bucket, per_address
from cardvault.web.ui.qr import qr_data_uri

PAGE = "/portal/setup/second-factor"
router = APIRouter(
    prefix="/portal",
    tags=["portal"],
    include_in_schema=False,
    dependencies=[per_address(Bucket.PORTAL)],
)
KEYS = ("setup_serial", "setup_org", "setup_until", "setup_ceremony", "setup_name")
READY_KEYS = ("setup_ready_serial", "setup_ready_name")


def remember_card(rt: Runtime, view: WebSessionView, serial: str, org: str, name: str) -> None:
    """After the invitation's passcode step: this browser may set up the second factor."""
    until = rt.clock() + timedelta(minutes=setup.SETUP_MINUTES)
    web_sessions.update_data(
        rt,
        view,
        setup_serial=serial,
        setup_org=org,
        setup_until=until.isoformat(),
        setup_name=name,
        **dict.fromkeys(READY_KEYS),
    )


def _card(rt: Runtime, view: WebSessionView) -> tuple[str, str]:
    serial, org = view.data.get("setup_serial"), view.data.get("setup_org")
    until = view.data.get("setup_until")
    if not serial or not org or not setup.setup_open(str(until) if until else None, rt.clock()):
        raise ui.RedirectTo(location="/portal/card")
    return str(serial), str(org)


def _choices(
    request: Request,
    rt: Runtime,
    view: WebSessionView,
    form: ui.Form,
    status: int = 200,
    **extra: object,
) -> Response:
    serial, org = _card(rt, view)
    return ui.render(
        request,
        "portal/invitation_factor.html",
        status=status,
        form=form.shown(),
        choices=setup.choices(rt, serial, org),
        name=view.data.get("setup_name"),
        **extra,
    )


@router.get("/setup/second-factor")
def choices_page(request: Request, rt: Rt, view: View) -> Response:
    return _choices(request, rt, view, ui.Form())


def _pair(request: Request, rt: Runtime, view: WebSessionView, serial: str, org: str) -> Response:
    offer = setup.start_pairing(rt, actor_for(request, rt), serial, org)
    web_sessions.update_data(rt, view, setup_link=offer.link_id)
    return _choices(request, rt, view, ui.Form(), offer=offer, qr=qr_data_uri(offer.uri))


def _in_person(
    request: Request, rt: Runtime, view: WebSessionView, serial: str, org: str
) -> Response:
    setup.in_person(rt, actor_for(request, rt), serial, org)
    return _done(request, rt, view, serial, in_person=True)


def _check_done(
    request: Request, rt: Runtime, view: WebSessionView, serial: str, org: str
) -> Response:
    if not setup.ready(rt, serial, org):
        raise InvalidInput(
            "Your card has no phone or security key yet. Pair your phone or register a key first.",
            field="pair",
        )
    return _done(request, rt, view, serial)


Choice = Callable[[Request, Runtime, WebSessionView, str, str], Response]
#: the buttons of the choices page: what each does, and the field a refusal is shown by
CHOICES: dict[str, tuple[Choice, str]] = {
    "pair": (_pair, "pair"),
    "in-person": (_in_person, "in_person"),
    "done": (_check_done, "pair"),
}


@router.post("/setup/second-factor/{choice}")
async def choose(request: Request, rt: Rt, view: View, choice: str) -> Response:
    if choice not in CHOICES:
        raise NotFound("Page not found.")
    form = await ui.checked_form(request, view)
    return await run_in_threadpool(_choose, request, rt, view, form, choice)


def _choose(
    request: Request, rt: Runtime, view: WebSessionView, form: ui.Form, choice: str
) -> Response:
    """Every choice acts on the card being set up; what it refuses shows on the choices page."""
    act, field = CHOICES[choice]
    serial, org = _card(rt, view)
    try:
        return act(request, rt, view, serial, org)
    except CardvaultError as exc:
        form.add_exception(exc, default=field)
        return _choices(request, rt, view, form, status_of(exc))


def _done(
    request: Request, rt: Runtime, view: WebSessionView, serial: str, *, in_person: bool = False
) -> Response:
    name = view.data.get("setup_name")
    _end_setup(rt, view)
    return _ready(request, serial, name, in_person=in_person)


def _ready(request: Request, serial: str, name: object, *, in_person: bool = False) -> Response:
    return ui.render(
        request, "portal/invitation_done.html", serial=serial, name=name, in_person=in_person
    )


def _end_setup(rt: Runtime, view: WebSessionView, **ready: str | None) -> None:
    """Forget the setup (only ever from a POST); ``ready`` is what the "ready" page shows."""
    forget: dict[str, str | None] = dict.fromkeys((*KEYS, *READY_KEYS, "setup_link"))
    web_sessions.update_data(rt, view, **{**forget, **ready})


@router.get("/setup/second-factor/ready")
def ready_page(request: Request, view: View) -> Response:
    """Where the security-key script goes once the key is registered: it only renders.

    The key-complete call (a POST with the CSRF token) already ended the setup and left the
    card's serial and the holder's name to show here; a GET changes nothing.
    """
    serial = view.data.get("setup_ready_serial")
    if not serial:  # no key yet: the choices (or My card once the setup has timed out)
        return ui.redirect(PAGE)
    return _ready(request, str(serial), view.data.get("setup_ready_name"))


# --- the security key (JSON, for static/ra/webauthn.js) ------------------------------------


@router.post("/api/setup/second-factor/key/begin")
def key_begin(
    request: Request, rt: Rt, view: View, x_csrf_token: Annotated[str | None, Header()] = None
) -> dict[str, Any]:
    ui.check_csrf(view, header=x_csrf_token)
    serial, org = _card(rt, view)
    started = setup.begin_key(rt, actor_for(request, rt), serial, org)
    return ui.keep_ceremony(rt, view, "setup_ceremony", started)


@router.post("/api/setup/second-factor/key/complete")
async def key_complete(
    request: Request, rt: Rt, view: View, x_csrf_token: Annotated[str | None, Header()] = None
) -> dict[str, Any]:
    ui.check_csrf(view, header=x_csrf_token)
    serial, org = _card(rt, view)
    key = await ui.read_new_key(request)
    ceremony = ui.take_ceremony(rt, view, "setup_ceremony")
    await run_in_threadpool(
        setup.complete_key,
        rt,
        actor_for(request, rt),
        serial,
        org,
        ceremony_id=ceremony,
        response=key.credential,
        nickname=key.nickname,
    )
    name = view.data.get("setup_name")
    await run_in_threadpool(
        _end_setup,
        rt,
        view,
        setup_ready_serial=serial,
        setup_ready_name=str(name) if name else None,
    )
    return {"next": f"{PAGE}/ready"}
