"""The vRA Manager's second step: signing in (``/ra/login``) and confirming it is you
before a sensitive action (``/ra/reauth``), on the shared steps of ``ui.second_factor``."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request

from cardvault.services.signin import sessions as card_sessions
from cardvault.services.signin import web_sessions
from cardvault.services.signin.web_sessions import WebSessionView
from cardvault.services.system.runtime import Runtime
from cardvault.web.client_address import actor_for
from cardvault.web.ra.context import AREA, safe_next, web_session
from cardvault.web.ui import second_factor
from cardvault.web.ui.second_factor import KEYS, Flow
from cardvault.web.ui.session import remember

router = APIRouter(prefix="/ra", tags=["vRA Manager"], include_in_schema=False)


def signed_in(
    request: Request,
    rt: Runtime,
    view: WebSessionView,
    card_session_id: str,
    kind: str,
    ident: str | None,
) -> WebSessionView:
    """Bind the web session to the new card session; remember who signed in, for
    re-authentication later (the same identifier, passcode and a second factor)."""
    signed = web_sessions.sign_in(rt, view, card_session_id=card_session_id)
    signed = web_sessions.update_data(
        rt, signed, login_txn=None, login_proof=None, ident_kind=kind, ident=ident
    )
    remember(request, AREA, signed)
    return signed


def _login_done(request: Request, rt: Runtime, view: WebSessionView, txn: str) -> str:
    kind, ident = view.data.get("login_kind"), view.data.get("login_ident")
    signed_in(request, rt, view, txn, str(kind or ""), str(ident or "") or None)
    return "/ra/role"


def _reauth_done(request: Request, rt: Runtime, view: WebSessionView, txn: str) -> str:
    """The new card session takes the old one's place, in the same organisation and role."""
    target = safe_next(str(view.data.get("reauth_next") or ""))
    org, role = view.data.get("ra_org"), view.data.get("ra_role")
    if org and role:
        card_sessions.select_role(
            rt, actor_for(request, rt), None, org_code=str(org), role=str(role), session_id=txn
        )
    signed = web_sessions.sign_in(rt, view, card_session_id=txn)
    signed = web_sessions.update_data(rt, signed, **{f"reauth_{k}": None for k in KEYS})
    remember(request, AREA, signed)
    return target


def _reauth_restart(view: WebSessionView) -> str:
    if view.signed_in:
        return "/ra/reauth?next=" + quote(
            safe_next(str(view.data.get("reauth_next") or "")), safe="/"
        )
    return "/ra"


LOGIN = Flow(
    name="login",
    title="Sign in: your second factor",
    prefix="/ra",
    layout="ra/layout.html",
    done=_login_done,
    restart=lambda view: "/ra",
)
REAUTH = Flow(
    name="reauth",
    title="Confirm it is you: your second factor",
    prefix="/ra",
    layout="ra/layout.html",
    done=_reauth_done,
    restart=_reauth_restart,
    signed_in_only=True,
)

for _flow in (LOGIN, REAUTH):
    second_factor.install(router, _flow, web_session)
