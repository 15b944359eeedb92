"""What every vRA Manager page shares: the area, its session, the RA's scope, re-authentication."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request

from cardvault.errors import PermissionDenied
from cardvault.services.ra import actions as ra_actions
from cardvault.services.ra.actions import RaContext
from cardvault.services.signin import web_sessions
from cardvault.services.signin.web_sessions import WebSessionView
from cardvault.services.system.runtime import Runtime
from cardvault.web import ui
from cardvault.web.deps import runtime
from cardvault.web.ui.session import address

AREA = ui.WebArea(
    name="ra", prefix="/ra", title="vRA Manager", login_path="/ra", logout_path="/ra/logout"
)
web_session = ui.session_dependency(AREA)

Rt = Annotated[Runtime, Depends(runtime)]
View = Annotated[WebSessionView, Depends(web_session)]

#: which RA roles may use which pages (the service checks the role is still granted)
AGENTS = ra_actions.ISSUERS
AUDITORS = ra_actions.AUDITORS


def ra_context(roles: tuple[str, ...]) -> Callable[[Request, WebSessionView], RaContext]:
    """A dependency: the signed-in RA acting in their chosen organisation, or a redirect."""

    def dependency(request: Request, view: View) -> RaContext:
        if not view.signed_in:
            raise ui.SignInRequired("Sign in first.")
        rt = runtime(request)
        try:
            return ra_actions.context(
                rt, None, address(request, rt), roles, session_id=view.card_session_id
            )
        except PermissionDenied:
            if not view.data.get("ra_role"):
                raise ui.RedirectTo(location="/ra/role") from None
            raise

    return dependency


Agent = Annotated[RaContext, Depends(ra_context(AGENTS))]
Auditor = Annotated[RaContext, Depends(ra_context(AUDITORS))]


def require_recent_sign_in(request: Request, rt: Runtime) -> None:
    """Sensitive actions: passcode + second factor within the last 10 minutes, or re-prove."""
    view: WebSessionView = request.state.web_view
    if web_sessions.needs_reauthentication(rt, view):
        raise ui.RedirectTo(location="/ra/reauth?next=" + quote(request.url.path, safe="/"))


def safe_next(target: str) -> str:
    """Where to go after re-authentication: a vRA Manager path of this site, nothing else."""
    parts = urlsplit(target or "")
    if parts.scheme or parts.netloc or not parts.path.startswith("/ra/"):
        return "/ra/persons"
    return parts.path


def person_url(user_id: str, tail: str = "") -> str:
    return f"/ra/persons/{user_id}{tail}"
