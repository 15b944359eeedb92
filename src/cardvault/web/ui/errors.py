"""Errors on browser pages become pages, not JSON: the one mapping point for the web areas.

Under an area's prefix (``/ra``, ``/portal``), a domain error renders an error page with the
same status the API would use (404 for anything outside the RA's scope, never 403 for it),
and a missing sign-in redirects to the area's sign-in page. Paths under ``<prefix>/api/``
are fetched by page scripts and keep the API's problem+json answers. Outside the areas, a
browser (``Accept: text/html``) that asks for a path that does not exist gets the "Page not
found" page too; everyone else, and every path under ``/api``, gets problem+json.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from cardvault.errors import AuthenticationFailed, CardvaultError
from cardvault.web.errors import RedirectTo, retry_after, status_of
from cardvault.web.ui.session import WebArea
from cardvault.web.ui.templating import redirect, render

Handler = Callable[[Request, Exception], Awaitable[Response]]
TITLES = {
    400: "There is a problem with what was sent",
    403: "You cannot do that",
    404: "Page not found",
    405: "Page not found",
    409: "That cannot be done now",
    413: "What was sent is too large",
    422: "There is a problem with what was sent",
    423: "The card is locked",
    429: "Too many attempts",
}


def area_of(request: Request) -> WebArea | None:
    path = request.url.path
    for area in getattr(request.app.state, "web_areas", ()):
        if (path == area.prefix or path.startswith(area.prefix + "/")) and not path.startswith(
            area.prefix + "/api/"
        ):
            return area  # type: ignore[no-any-return]
    return None


def _page(
    request: Request, status: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    title = TITLES.get(status, "Sorry, there is a problem with the service")
    if status == 404:
        message = "If you typed the web address, check it is correct. " + (
            message if message != "Not Found" else ""
        )
    page = render(request, "ui/error.html", status=status, title=title, message=message.strip())
    page.headers.update(headers or {})
    return page


def _browser_outside_areas(request: Request) -> bool:
    """A browser asking for a page outside every area (``/nothing-here``): an unknown or
    wrong-method path answers with a page. API paths keep problem+json whatever is asked."""
    path = request.url.path
    accepts = request.headers.get("accept", "")
    return "/api/" not in path and not path.startswith("/api") and "text/html" in accepts


def _wrap(
    json_handler: Handler,
    html: Callable[[Request, Exception], Response],
    *,
    pages_outside_areas: bool = False,
) -> Handler:
    async def handler(request: Request, exc: Exception) -> Response:
        if area_of(request) is not None:
            return html(request, exc)
        if pages_outside_areas and _browser_outside_areas(request):
            return html(request, exc)
        return await json_handler(request, exc)

    return handler


def _domain_html(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CardvaultError)
    area = area_of(request)
    if isinstance(exc, RedirectTo):
        return redirect(exc.location)
    if isinstance(exc, AuthenticationFailed) and area is not None:
        return redirect(area.login_path)
    return _page(request, status_of(exc), exc.message, retry_after(exc))


def _http_html(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    return _page(request, exc.status_code, str(exc.detail))


def _unexpected_html(request: Request, exc: Exception) -> Response:
    return _page(request, 500, "Something went wrong on our side; nothing was changed.")


def install(app: FastAPI) -> None:
    """Wrap the JSON handlers that ``web.errors`` installed (call after it)."""
    handlers = app.exception_handlers
    for key, html in (
        (CardvaultError, _domain_html),
        (StarletteHTTPException, _http_html),
        (Exception, _unexpected_html),
    ):
        json_handler = handlers.get(key)
        if json_handler is not None:
            wrapped = _wrap(
                json_handler,  # type: ignore[arg-type]
                html,
                pages_outside_areas=key is StarletteHTTPException,
            )
            app.add_exception_handler(key, wrapped)


def add_area(app: FastAPI, area: WebArea) -> None:
    """Register a browser area (its errors become pages, its sign-in is a redirect)."""
    areas = list(getattr(app.state, "web_areas", ()))
    areas.append(area)
    app.state.web_areas = tuple(areas)
