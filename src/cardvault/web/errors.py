"""The one place where errors become HTTP: a status per error class, RFC 9457 problems.

:data:`STATUS` maps error classes to HTTP statuses; an error takes the status of the first
class of its MRO that the table names, so a feature's error answers as its category does
(``WrongPasscode`` is an ``AuthenticationFailed``: 401) unless it is listed itself
(``CardLocked``: 423). Every refusal is ``application/problem+json``:

``type``
    ``urn:cardvault:problem:<code>``: one per problem code.
``title``
    The same for every occurrence of the type (RFC 9457 §3.1.3): a short summary spelled
    from the code (``wrong_passcode``: "Wrong passcode"). What went wrong *this* time, for
    people, is ``detail``; clients show ``detail`` (docs/protocols/api.md, "Errors").
``status``, ``detail``, ``instance``
    The HTTP status, the message, and the request's path.
``code``, ``remedy``, and the error's typed extension members
    ``code`` is the stable machine-readable reason clients decide on; the extension members
    are what :meth:`CardvaultError.extensions` gives (``attempts_left``, ``retry_after``…).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import field
from types import MappingProxyType
from typing import Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from cardvault import errors as e
from cardvault.crypto.envelope import EnvelopeTooLarge
from cardvault.crypto.external_key import ExternalSignatureInvalid
from cardvault.json_types import JsonObject, JsonValue
from cardvault.services.devices.errors import PushRateLimited
from cardvault.services.piv.errors import LinkClosed
from cardvault.services.pki.errors import CaMissing
from cardvault.services.rate_limits.errors import RateLimited
from cardvault.services.signin.errors import Busy, CardLocked
from cardvault.store.errors import DatabaseUnavailable, is_unavailable
from cardvault.strict_json import JsonLimitExceeded

log = logging.getLogger("cardvault.web")
PROBLEM = "application/problem+json"


@e.error
class RedirectTo(e.CardvaultError):
    """Not an error for the person: the page they asked for needs another page first."""

    code = "redirect"
    message: str = field(default="Continue on another page.", init=False)
    location: str


#: error class → HTTP status; an error answers with the first class of its MRO listed here
STATUS: Final[Mapping[type[e.CardvaultError], int]] = MappingProxyType(
    {
        # the categories (cardvault.errors)
        e.CardvaultError: 500,
        e.InvalidInput: 422,
        e.NotFound: 404,
        e.Conflict: 409,
        e.PermissionDenied: 403,
        e.AuthenticationFailed: 401,
        e.IntegrityError: 500,
        e.ServiceSealed: 503,
        e.Unavailable: 503,
        e.NotSetUp: 500,
        # the errors whose status is not their category's
        RedirectTo: 303,  # a page needs another page first
        JsonLimitExceeded: 400,  # the body is over a parser limit, before any field is read
        LinkClosed: 410,  # the reader link is gone for good
        EnvelopeTooLarge: 413,
        CardLocked: 423,
        Busy: 429,
        RateLimited: 429,
        PushRateLimited: 429,
        CaMissing: 503,  # the service runs; issuing waits for `cardvault ca init`
        ExternalSignatureInvalid: 502,  # the HSM (an upstream of ours) signed wrongly
    }
)

#: an RFC 9457 problem as the service answers every refusal (the OpenAPI document's schema)
PROBLEM_SCHEMA: JsonObject = {
    "type": "object",
    "required": ["type", "title", "status", "code"],
    "properties": {
        "type": {"type": "string", "description": "urn:cardvault:problem:<code>"},
        "title": {"type": "string", "description": "what went wrong, for people"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "what went wrong this time, for people"},
        "instance": {"type": "string", "description": "the request's path"},
        "code": {"type": "string", "description": "stable machine-readable reason"},
        "remedy": {"type": "string", "description": "what to do about it"},
    },
    "additionalProperties": True,
}
_PROBLEM_CONTENT: JsonObject = {PROBLEM: {"schema": PROBLEM_SCHEMA}}
#: the error responses every API route may give, for ``include_router(responses=…)``
PROBLEM_RESPONSES: Final[dict[int | str, dict[str, JsonValue]]] = {
    "4XX": {"description": "Refused: nothing was done", "content": _PROBLEM_CONTENT},
    "5XX": {"description": "Failed or unavailable: nothing was done", "content": _PROBLEM_CONTENT},
}


def status_of(exc: e.CardvaultError | type[e.CardvaultError]) -> int:
    """The HTTP status of an error (or error class): that of the first class of its MRO in
    :data:`STATUS`."""
    kind = exc if isinstance(exc, type) else type(exc)
    return next(STATUS[cls] for cls in kind.__mro__ if cls in STATUS)


#: words of a code that are written in capitals in a title
_ACRONYMS: Final = frozenset(
    {"ad", "ca", "crl", "csv", "fido2", "hr", "http", "id", "jose", "json", "jwe", "ocsp",
     "pin", "piv", "puk", "qr", "ra", "sms", "totp", "uid", "url", "uv"}
)  # fmt: skip


def title_of(code: str) -> str:
    """The problem type's title: the same for every error with this code (RFC 9457's
    ``title``), spelled from the code: ``card_pin_blocked`` is "Card PIN blocked"."""
    words = [w.upper() if w in _ACRONYMS else w for w in code.split("_") if w]
    if not words:
        return "Error"
    return " ".join([words[0][:1].upper() + words[0][1:], *words[1:]])


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    extra: JsonObject | None = None,
) -> JSONResponse:
    """An RFC 9457 problem response: the type's stable title, ``detail`` the message."""
    body: JsonObject = {
        "type": f"urn:cardvault:problem:{code}",
        "title": title_of(code),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance is not None:
        body["instance"] = instance
    body.update(extra or {})
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def problem_of(exc: e.CardvaultError, instance: str | None = None) -> JSONResponse:
    """The problem response for a domain error, with its status and Retry-After."""
    extra: JsonObject = {"remedy": exc.remedy} if exc.remedy else {}
    extra.update(exc.extensions())
    return problem(
        status_of(exc),
        exc.code,
        exc.message,
        instance=instance,
        headers=retry_after(exc),
        extra=extra,
    )


async def _domain(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, e.CardvaultError)
    if status_of(exc) >= 500:
        log.warning("request %s failed: %s (%s)", request.url.path, exc.code, exc.message)
    return problem_of(exc, request.url.path)


def retry_after(exc: e.CardvaultError) -> dict[str, str] | None:
    """Retry-After for an error that says when to come back (429 and 503 refusals)."""
    seconds = exc.extensions().get("retry_after")
    if isinstance(seconds, int) and not isinstance(seconds, bool) and seconds > 0:
        return {"Retry-After": str(seconds)}
    return None


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors: list[JsonValue] = [
        {
            "field": ".".join(str(p) for p in err.get("loc", ()) if p != "body"),
            "message": err.get("msg", "invalid"),
        }
        for err in exc.errors()
    ]
    return problem(
        422,
        "invalid_input",
        "The request is not valid.",
        instance=request.url.path,
        extra={"errors": errors},
    )


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
        exc.status_code, "http_error"
    )
    return problem(
        exc.status_code, code, str(exc.detail), instance=request.url.path, headers=exc.headers
    )


async def _database(request: Request, exc: Exception) -> JSONResponse:
    """A database that went away mid-request (a failover, a restart) is a retryable 503,
    not a 500: the request's transaction did not commit."""
    assert isinstance(exc, DBAPIError)
    if not is_unavailable(exc):
        return await _unexpected(request, exc)
    log.warning(
        "request %s failed: database unavailable (%s)", request.url.path, type(exc.orig).__name__
    )
    return problem_of(DatabaseUnavailable(), request.url.path)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s", request.url.path)
    return problem(
        500,
        "internal",
        "Something went wrong on our side; nothing was changed.",
        instance=request.url.path,
    )


def install(app: FastAPI) -> None:
    """Answer every error with a problem: domain errors, validation, HTTP, and the rest."""
    app.add_exception_handler(e.CardvaultError, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(DBAPIError, _database)
    app.add_exception_handler(Exception, _unexpected)
