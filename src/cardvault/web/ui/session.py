"""Web sessions at the HTTP edge: the cookie, CSRF checks, one-time forms, notices.

The cookie is ``__Host-``-prefixed, ``Secure``, ``HttpOnly`` and ``SameSite=Strict``, with no
``Max-Age`` (it ends with the browser; the server's idle and absolute limits end it sooner).
``Secure`` is always set: browsers treat ``http://localhost`` as a secure context and accept
``Secure`` cookies there, so the development server and the browser tests need no exception.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import Request
from starlette.types import Scope

from cardvault.domain.rate_limit import Bucket
from cardvault.errors import AuthenticationFailed, InvalidInput, PermissionDenied, error
from cardvault.json_types import JsonObject
from cardvault.services.rate_limits import check as rate_limits
from cardvault.services.security_keys.keys import CeremonyStart
from cardvault.services.signin import web_sessions
from cardvault.services.signin.web_sessions import WebSessionView
from cardvault.services.system.runtime import Runtime
from cardvault.web.client_address import client_address
from cardvault.web.deps import runtime_of
from cardvault.web.ui.forms import Form, read_form

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
FORM_ID_FIELD = "form_id"


@dataclass(frozen=True, kw_only=True)
class WebArea:
    """One browser area of the service (``/ra``, ``/portal``)."""

    name: str
    prefix: str
    title: str
    login_path: str
    #: where "Sign out" posts (the timeout warning offers it); None where nobody signs in
    logout_path: str | None = None

    @property
    def cookie(self) -> str:
        return f"__Host-cardvault-{self.name}"


class SignInRequired(AuthenticationFailed):
    """No signed-in web session: the HTML error handler redirects to the area's login."""

    code = "sign_in_required"


@error
class CsrfFailed(PermissionDenied):
    code = "csrf_failed"

    message: str = field(
        default="This form has expired or did not come from this site. Go back, reload the page "
        "and try again.",
        init=False,
    )


def address(request: Request, rt: Runtime) -> str | None:
    return client_address(request, rt.settings.trusted_proxies)


def session_dependency(area: WebArea) -> Callable[[Request], WebSessionView]:
    """A FastAPI dependency: the request's web session for ``area`` (started if none)."""

    def dependency(request: Request) -> WebSessionView:
        rt = runtime_of(request)
        view = web_sessions.load(rt, area.name, request.cookies.get(area.cookie))
        if view is None:
            # each new session is a row: a browser makes one, a flood would make millions
            client = address(request, rt)
            rate_limits.check_address(rt, Bucket.WEB_SESSION, client)
            view = web_sessions.start(rt, area.name, client_address=client)
        remember(request, area, view)
        return view

    return dependency


def remember(request: Request, area: WebArea, view: WebSessionView) -> None:
    """Keep the view for templates; schedule the cookie when the token is new."""
    request.state.web_view = view
    request.state.web_area = area
    if view.rotated:
        request.state.web_cookie = (area.cookie, view.token)


def forget(request: Request, area: WebArea) -> None:
    request.state.web_cookie = (area.cookie, None)


def check_csrf(view: WebSessionView, form: Form | None = None, header: str | None = None) -> None:
    presented = header if form is None else form.get(CSRF_FIELD)
    if not web_sessions.csrf_ok(view.token, presented):
        raise CsrfFailed()


async def checked_form(
    request: Request, view: WebSessionView, secrets: tuple[str, ...] = ()
) -> Form:
    """A posted form whose CSRF token is this session's (else CsrfFailed); ``secrets`` are
    the fields never shown back."""
    form = await read_form(request, secret_fields=secrets)
    check_csrf(view, form)
    return form


def keep_ceremony(
    rt: Runtime, view: WebSessionView, name: str, started: CeremonyStart
) -> JsonObject:
    """A key registration just started, kept under ``name`` for :func:`take_ceremony`; the
    options the page's script hands to ``navigator.credentials.create``."""
    web_sessions.update_data(rt, view, **{name: started.ceremony_id})
    return dict(started.options)


def take_ceremony(rt: Runtime, view: WebSessionView, name: str) -> str:
    """The key registration this session started under ``name``, forgotten as it is read: a
    ceremony answers once. InvalidInput when there is none."""
    ceremony = str(view.data.get(name) or "")
    web_sessions.update_data(rt, view, **{name: None})
    if not ceremony:
        raise InvalidInput("Start the registration again.", field="nickname")
    return ceremony


def set_notice(rt: Runtime, request: Request, text: str) -> None:
    """A one-time message shown on the next page (after a POST-redirect-GET)."""
    view: WebSessionView = request.state.web_view
    request.state.web_view = web_sessions.update_data(rt, view, notice=text[:300])


def take_notice(rt: Runtime, request: Request) -> str | None:
    view: WebSessionView | None = getattr(request.state, "web_view", None)
    if view is None or "notice" not in view.data:
        return None
    text = str(view.data["notice"])
    request.state.web_view = web_sessions.update_data(rt, view, notice=None)
    return text


def cookie_header(name: str, value: str | None) -> bytes:
    if value is None:
        return f"{name}=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Strict".encode()
    return f"{name}={value}; Path=/; Secure; HttpOnly; SameSite=Strict".encode()


def pending_cookie(scope: Scope) -> bytes | None:
    """The ``Set-Cookie`` value a request's session scheduled (new, rotated, ended), if any;
    the edge (:class:`cardvault.web.edge.Edge`) adds it to the answer."""
    pending = (scope.get("state") or {}).get("web_cookie")
    return None if pending is None else cookie_header(*pending)
