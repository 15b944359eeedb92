"""Time limits people can see and extend (WCAG 2.2.1 Timing Adjustable).

A web session ends after its idle limit and its absolute limit (``services.signin.session_limits``).
Every page of an area says the limits in its footer; without JavaScript, it says them again
beside the first form's button. With JavaScript (``static/ui/timeout.js``), a dialog warns at
least two minutes before the session ends, says what will be lost, and offers "Stay signed in",
which restarts the idle timers on the server. Pages with a form but no sign-in time out too
(the form's CSRF token is bound to the session), so they get the same warning in other words.

Each area gets three routes: ``<prefix>/api/session`` (the limits, restarting nothing, so a
page can see that another tab kept the session alive), ``<prefix>/api/session/extend`` (POST,
CSRF header) and ``<prefix>/signed-out`` (the page a timed-out tab goes to).
"""

# no "from __future__ import annotations": FastAPI must see the closures' dependencies
# (Depends(session)) as objects, not as strings it cannot resolve at module level
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from cardvault.services.signin import session_limits
from cardvault.services.signin.session_limits import SessionLimits
from cardvault.services.signin.web_sessions import WebSessionView
from cardvault.services.system.runtime import Runtime
from cardvault.web.deps import runtime
from cardvault.web.ui.session import WebArea, address, check_csrf

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
#: the warning comes this long before the session ends (the issue's and GOV.UK's two minutes)
WARN_SECONDS = 120


def minutes_in_words(minutes: int) -> str:
    """15 minutes, 1 hour, 12 hours, 1 hour and 30 minutes."""
    hours, rest = divmod(minutes, 60)
    parts = [f"{hours} hour{'s' if hours != 1 else ''}"] if hours else []
    if rest or not hours:
        parts.append(f"{rest} minute{'s' if rest != 1 else ''}")
    return " and ".join(parts)


@dataclass(kw_only=True)
class PageTimeLimit:
    """What a page shows and what its script needs about the session's limits."""

    signed_in: bool
    idle: str
    absolute: str
    idle_seconds: int
    end_seconds: int
    logout_path: str | None
    status_path: str
    extend_path: str
    signed_out_path: str
    warn_seconds: int = WARN_SECONDS
    _noted: bool = field(default=False, repr=False)

    def note_once(self) -> bool:
        """True for the first form of the page only (where the no-JavaScript note goes)."""
        first, self._noted = not self._noted, True
        return first


def for_page(rt: Runtime, area: WebArea, view: WebSessionView) -> PageTimeLimit | None:
    """The limits of the page's session, as the page shows them; None if it has ended."""
    limits = session_limits.read(rt, view.id)
    if limits is None:
        return None
    idle_seconds, end_seconds = limits.seconds_left(rt.clock())
    return PageTimeLimit(
        signed_in=limits.signed_in,
        idle=minutes_in_words(limits.idle_minutes),
        absolute=minutes_in_words(limits.absolute_minutes),
        idle_seconds=idle_seconds,
        end_seconds=end_seconds,
        logout_path=area.logout_path,
        status_path=f"{area.prefix}/api/session",
        extend_path=f"{area.prefix}/api/session/extend",
        signed_out_path=f"{area.prefix}/signed-out",
    )


def _answer(rt: Runtime, limits: SessionLimits | None) -> JSONResponse:
    if limits is None:
        return JSONResponse({"active": False}, headers=NO_STORE)
    idle_seconds, end_seconds = limits.seconds_left(rt.clock())
    return JSONResponse(
        {
            "active": True,
            "signed_in": limits.signed_in,
            "idle_seconds": idle_seconds,
            "end_seconds": end_seconds,
        },
        headers=NO_STORE,
    )


def router(area: WebArea, session: Callable[[Request], WebSessionView]) -> APIRouter:
    """The area's session-limit routes (see the module's docstring)."""
    routes = APIRouter(prefix=area.prefix, include_in_schema=False)

    @routes.get("/api/session")
    def status(request: Request, rt: Annotated[Runtime, Depends(runtime)]) -> Response:
        """The limits now, restarting no timer (another tab may have kept the session)."""
        return _answer(rt, session_limits.peek(rt, area.name, request.cookies.get(area.cookie)))

    @routes.post("/api/session/extend")
    def extend(
        request: Request,
        rt: Annotated[Runtime, Depends(runtime)],
        view: Annotated[WebSessionView, Depends(session)],
    ) -> Response:
        """What "Stay signed in" does: loading the session restarted its idle timer; the card
        session's restarts here. A session that had already ended answers ``active: false``."""
        check_csrf(view, header=request.headers.get("x-csrf-token"))
        return _answer(rt, session_limits.extend(rt, view.id, client_address=address(request, rt)))

    @routes.get("/signed-out")
    def signed_out(
        request: Request,
        view: Annotated[WebSessionView, Depends(session)],
        why: Literal["idle", "absolute"] = "idle",
    ) -> Response:
        """Where a page goes when its session ended while it was open."""
        from cardvault.web.ui.templating import render  # templating renders with for_page

        return render(request, "ui/signed_out.html", why=why, title="You have been signed out")

    return routes
