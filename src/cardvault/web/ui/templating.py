"""Server-rendered pages: one Jinja2 environment for every browser area, autoescaped.

Templates live in ``cardvault/web/templates`` (``ui/`` holds the layout and form macros
every area shares); static files in ``cardvault/web/static``. Pages are never cached.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from cardvault.errors import CardvaultError
from cardvault.services.signin import web_sessions
from cardvault.web.deps import runtime_of
from cardvault.web.errors import status_of
from cardvault.web.ui import timeout
from cardvault.web.ui.forms import Form
from cardvault.web.ui.session import take_notice

WEB = Path(__file__).resolve().parent.parent
TEMPLATES = WEB / "templates"
STATIC = WEB / "static"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _when(value: datetime | str | None) -> str:
    """A time people read: 28 Nov 2026 14:05 UTC."""
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        return parsed.strftime("%d %b %Y %H:%M UTC")
    return value.strftime("%d %b %Y %H:%M UTC")


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.globals["new_form_id"] = lambda: secrets.token_urlsafe(16)
    return env


def render(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    """Render a page with what every layout needs: area, CSRF token, notice, empty form."""
    view = getattr(request.state, "web_view", None)
    area = getattr(request.state, "web_area", None)
    rt = runtime_of(request) if view is not None else None
    notice = take_notice(rt, request) if rt is not None else None
    base: dict[str, Any] = {
        "area": area,
        "csrf_token": web_sessions.csrf_token(view.token) if view is not None else "",
        "notice": notice,
        "form": Form(),
        "path": request.url.path,
        "time_limit": timeout.for_page(rt, area, view) if rt and area and view else None,
    }
    base.update(context)
    html = environment().get_template(template).render(**base)
    return HTMLResponse(html, status_code=status, headers=NO_STORE)


def refused(
    request: Request,
    template: str,
    form: Form,
    exc: CardvaultError,
    *,
    default: str = "",
    fields: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """A form's page again after the service refused it: ``exc`` next to its field (see
    :meth:`Form.add_exception`), the status it maps to, and no secret sent back."""
    form.add_exception(exc, fields=fields, default=default)
    return render(request, template, status=status_of(exc), form=form.shown(), **context)


def redirect(url: str) -> RedirectResponse:
    """303 See Other: after a POST the browser GETs the result (no resubmission on reload)."""
    return RedirectResponse(url, status_code=303, headers=NO_STORE)
