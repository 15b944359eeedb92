"""My card: the holder signs in to the portal with their own card, and signs out.

Sign-in is the engine's, as in the vRA Manager (purpose ``holder``): identifier and
passcode here, then any second factor the organisation allows (``ui.second_factor``: a
code, a push to the paired phone, the security key). The card session it opens is bound
to the web session (token rotated); the browser never gets SK, which is dropped at once.
"""

from __future__ import annotations

import contextlib

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from cardvault.errors import CardvaultError
from cardvault.services.holders import account, methods
from cardvault.services.signin import sessions as card_sessions
from cardvault.services.signin import web_sessions
from cardvault.services.signin.web_sessions import WebSessionView
from cardvault.services.system.runtime import Runtime
from cardvault.web import ui
from cardvault.web.client_address import actor_for
from cardvault.web.portal.steps import AREA, Rt, View, web_session
from cardvault.web.rate_limit import Bucket, per_address
from cardvault.web.ui import first_step, organisation_choice, second_factor
from cardvault.web.ui.second_factor import Flow
from cardvault.web.ui.session import address, remember

router = APIRouter(prefix="/portal", tags=["portal"], include_in_schema=False)
HOME = "/portal/card"
#: what the paired phone shows as the computer asking, when a push is sent
CLIENT_NAME = "Self-service portal"


def _login_done(request: Request, rt: Runtime, view: WebSessionView, txn: str) -> str:
    signed = web_sessions.sign_in(rt, view, card_session_id=txn)
    remember(request, AREA, web_sessions.update_data(rt, signed, login_txn=None))
    return HOME


LOGIN = Flow(
    name="login",
    title="Sign in: your second factor",
    prefix=HOME,
    layout="portal/layout.html",
    done=_login_done,
    restart=lambda view: HOME,
    no_factor_help="Ask your Registration Authority to pair your phone or register a security key.",
)
second_factor.install(router, LOGIN, web_session)
organisation_choice.install(router, LOGIN, web_session)
FIRST_STEP = first_step.FirstStep(
    flow=LOGIN, purpose="holder", client_name=CLIENT_NAME, template="portal/card_login.html"
)


@router.get("/card")
def home(request: Request, rt: Rt, view: View) -> Response:
    if not view.signed_in or view.card_session_id is None:
        return ui.render(request, "portal/card_login.html", form=ui.Form())
    card = account.my_card(rt, actor_for(request, rt), view.card_session_id)
    return ui.render(request, "portal/card.html", card=card, methods=_methods(request, rt, view))


def _methods(request: Request, rt: Runtime, view: WebSessionView) -> list[methods.OwnMethod]:
    assert view.card_session_id is not None
    return methods.my_methods(rt, actor_for(request, rt), view.card_session_id)


@router.post("/card", dependencies=[per_address(Bucket.SIGNIN)])
async def login(request: Request, rt: Rt, view: View) -> Response:
    form = await ui.checked_form(request, view, first_step.SECRETS)
    return await run_in_threadpool(first_step.sign_in, request, rt, view, form, FIRST_STEP)


@router.post("/card/logout")
async def logout(request: Request, rt: Rt, view: View) -> Response:
    await ui.checked_form(request, view)
    return await run_in_threadpool(_logout, request, rt, view)


def _logout(request: Request, rt: Runtime, view: WebSessionView) -> Response:
    card_session = web_sessions.end(rt, view)
    if card_session:
        with contextlib.suppress(CardvaultError):  # already ended: signed out either way
            card_sessions.logout(rt, actor_for(request, rt), None, session_id=card_session)
    fresh = web_sessions.start(rt, AREA.name, client_address=address(request, rt))
    remember(request, AREA, fresh)
    ui.set_notice(rt, request, "You have signed out.")
    return ui.redirect(HOME)
