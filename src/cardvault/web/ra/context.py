"""What every vRA Manager page shares: the area, its session, the RA's scope, re-authentication."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request

from cardvault.domain.vocabulary import RaPermission, roles_allowed
from cardvault.errors import PermissionDenied
from cardvault.services.ra import actions as ra_actions
from cardvault.services.ra.actions import RaContext
from cardvault.services.signin import web_sessions
from cardvault.services.signin.web_sessions import WebSessionView
from cardvault.services.system.runtime import Runtime
from cardvault.web import ui
from cardvault.web.deps import runtime, runtime_of
from cardvault.web.ui.session import address

AREA = ui.WebArea(
    name="ra", prefix="/ra", title="vRA Manager", login_path="/ra", logout_path="/ra/logout"
)
web_session = ui.session_dependency(AREA)

Rt = Annotated[Runtime, Depends(runtime)]
View = Annotated[WebSessionView, Depends(web_session)]


class RaGate:
    """A dependency: the signed-in RA acting in their chosen organisation under a role that
    holds ``permission``, or a redirect to sign in or choose a role, or 403.

    Each vRA Manager route depends on exactly one gate; the authorisation matrix test finds
    it on the route and checks every role against it.
    """

    def __init__(self, permission: RaPermission) -> None:
        self.permission = permission
        self.roles = roles_allowed(permission)

    def __call__(self, request: Request, view: View) -> RaContext:
        if not view.signed_in:
            raise ui.SignInRequired("Sign in first.")
        rt = runtime_of(request)
        try:
            return ra_actions.context(
                rt, None, address(request, rt), self.roles, session_id=view.card_session_id
            )
        except PermissionDenied:
            if not view.data.get("ra_role"):
                raise ui.RedirectTo(location="/ra/role") from None
            raise


def ra_context(permission: RaPermission) -> RaGate:
    return RaGate(permission)


#: one name per permission, for the routes' signatures
Viewer = Annotated[RaContext, Depends(ra_context(RaPermission.VIEW_PEOPLE))]
PeopleManager = Annotated[RaContext, Depends(ra_context(RaPermission.MANAGE_PEOPLE))]
Agent = Annotated[RaContext, Depends(ra_context(RaPermission.MANAGE_CARDS))]
Sponsor = Annotated[RaContext, Depends(ra_context(RaPermission.APPROVE_CARDS))]
Auditor = Annotated[RaContext, Depends(ra_context(RaPermission.READ_AUDIT))]
RoleGranter = Annotated[RaContext, Depends(ra_context(RaPermission.GRANT_ROLES))]
Manager = Annotated[RaContext, Depends(ra_context(RaPermission.MANAGE_SETTINGS))]


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
