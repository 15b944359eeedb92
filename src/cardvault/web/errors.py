"""The one place where errors become HTTP responses: RFC 9457 problem+json, stable codes."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cardvault.errors import CardvaultError

log = logging.getLogger("cardvault.web")
PROBLEM = "application/problem+json"


def problem(
    status: int, code: str, title: str, *, headers: Mapping[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {
        "type": f"urn:cardvault:problem:{code}",
        "title": title,
        "status": status,
        "code": code,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


async def _domain(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CardvaultError)
    data = exc.as_dict()
    data.pop("code", None)
    data.pop("message", None)
    if exc.http_status >= 500:
        log.warning("request %s failed: %s (%s)", request.url.path, exc.code, exc.message)
    return problem(exc.http_status, exc.code, exc.message, headers=retry_after(exc), **data)


def retry_after(exc: CardvaultError) -> dict[str, str] | None:
    """Retry-After for an error that says when to come back (429 and 503 refusals)."""
    seconds = exc.data.get("retry_after")
    if isinstance(seconds, int) and not isinstance(seconds, bool) and seconds > 0:
        return {"Retry-After": str(seconds)}
    return None


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"),
            "message": e.get("msg", "invalid"),
        }
        for e in exc.errors()
    ]
    return problem(422, "invalid_input", "The request is not valid.", errors=errors)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
        exc.status_code, "http_error"
    )
    return problem(exc.status_code, code, str(exc.detail), headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s", request.url.path)
    return problem(500, "internal", "Something went wrong on our side; nothing was changed.")


def install(app: FastAPI) -> None:
    app.add_exception_handler(CardvaultError, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
