"""The browser foundation every web area shares (vRA Manager, self-service portal).

``install(app)`` mounts the static files and adds the HTML error pages (the security
headers and the web-session cookie are written by the edge, ``web/edge.py``); an area then
registers itself with ``add_area`` and builds its routes with ``session_dependency``,
``read_form``, ``check_csrf`` and ``render`` (see ``docs/architecture/web-foundation.md``).
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles

from cardvault.services.signin.web_sessions import WebSessionView
from cardvault.web.errors import RedirectTo
from cardvault.web.ui import errors, statement, timeout
from cardvault.web.ui.errors import add_area
from cardvault.web.ui.forms import Form, read_credential, read_form, read_json, read_new_key
from cardvault.web.ui.session import (
    CsrfFailed,
    SignInRequired,
    WebArea,
    check_csrf,
    checked_form,
    keep_ceremony,
    session_dependency,
    set_notice,
    take_ceremony,
)
from cardvault.web.ui.templating import STATIC, redirect, refused, render

__all__ = [
    "CsrfFailed",
    "Form",
    "RedirectTo",
    "SignInRequired",
    "WebArea",
    "add_area",
    "add_area_pages",
    "check_csrf",
    "checked_form",
    "install",
    "keep_ceremony",
    "read_credential",
    "read_form",
    "read_json",
    "read_new_key",
    "redirect",
    "refused",
    "render",
    "session_dependency",
    "set_notice",
    "take_ceremony",
]


def install(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    errors.install(app)


def add_area_pages(
    app: FastAPI, area: WebArea, session: Callable[[Request], WebSessionView]
) -> None:
    """What every area has besides its own pages: the session's time limits (the timeout
    warning's routes and the signed-out page) and the accessibility statement."""
    app.include_router(timeout.router(area, session))
    app.include_router(statement.router(area, session))
