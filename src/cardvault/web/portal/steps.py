"""What every portal page shares: the area, its session, the step cookie, link problems,
the security questions of a form.

The step cookie carries ``<transaction id>.<K>`` between the steps of a reset or an
invitation: K re-wraps the card's key for the few minutes the holder needs, and exists only
in their browser (``__Host-``, Secure, HttpOnly, SameSite=Strict), never in the database,
a page or a log.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Callable
from typing import Annotated, Any, Concatenate, ParamSpec, TypeVar

from fastapi import Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from cardvault.errors import CardvaultError
from cardvault.services.cards.enrolment import SecurityAnswer
from cardvault.services.signin.web_sessions import WebSessionView
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.web import ui
from cardvault.web.client_address import actor_for
from cardvault.web.deps import runtime
from cardvault.web.errors import status_of

AREA = ui.WebArea(
    name="portal",
    prefix="/portal",
    title="Self-service",
    login_path="/portal/card",
    logout_path="/portal/card/logout",
)
web_session = ui.session_dependency(AREA)

P = ParamSpec("P")
T = TypeVar("T")
Rt = Annotated[Runtime, Depends(runtime)]
View = Annotated[WebSessionView, Depends(web_session)]

STEP_COOKIE = "__Host-cardvault-portal-step"
#: link tokens travel in portal paths; the access log must not keep them
_TOKEN_IN_PATH = re.compile(r"(/portal/(?:api/)?(?:reset|invitation)/)[A-Za-z0-9_-]{20,}")


def set_step(response: Response, transaction_id: str, key: bytes) -> Response:
    value = f"{transaction_id}.{base64.urlsafe_b64encode(key).decode().rstrip('=')}"
    response.set_cookie(STEP_COOKIE, value, path="/", secure=True, httponly=True, samesite="strict")
    return response


def clear_step(response: Response) -> Response:
    response.delete_cookie(STEP_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    return response


def step_of(request: Request) -> tuple[str, bytes]:
    """(transaction id, K) from the step cookie; empty values when there is none."""
    txn_id, _, key = request.cookies.get(STEP_COOKIE, "").partition(".")
    try:
        raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4)) if key else b""
    except (binascii.Error, ValueError):
        raw = b""
    return txn_id[:36], raw


def link_problem(request: Request, exc: CardvaultError, **context: Any) -> Response:
    """A link that no longer works, a blocked card: say why and what to do next."""
    return ui.render(
        request,
        "portal/problem.html",
        status=status_of(exc),
        title="This link cannot be used",
        message=exc.message,
        remedy=exc.remedy,
        **context,
    )


def link_page(
    request: Request,
    template: str,
    token: str,
    form: ui.Form,
    status: int,
    opened: Callable[[], object],
    ending: tuple[type[CardvaultError], ...],
) -> Response:
    """The first page of an emailed link: ``template`` with what ``opened`` found, or why the
    link no longer works (``ending``)."""
    try:
        page = opened()
    except ending as exc:
        return link_problem(request, exc)
    return ui.render(request, template, status=status, page=page, form=form, token=token)


def holder(request: Request, rt: Runtime) -> Actor:
    """The card holder on the portal, as the audit log names them."""
    return actor_for(request, rt, ref="holder:portal", display="card holder")


async def in_step(
    request: Request,
    rt: Runtime,
    token: str,
    call: Callable[Concatenate[Runtime, Actor, str, str, bytes, P], T],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """``call`` for this browser's step of a link, in the thread pool: the services take the
    holder, the link's token and the step cookie's transaction and K first."""
    txn_id, key = step_of(request)
    actor = holder(request, rt)
    return await run_in_threadpool(call, rt, actor, token, txn_id, key, *args, **kwargs)


class RedactLinkTokens(logging.Filter):
    """An access-log filter: ``/portal/reset/<token>`` is logged as ``/portal/reset/…``
    (and the page scripts' ``/portal/api/reset/<token>`` alike)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _TOKEN_IN_PATH.sub(r"\1…", a) if isinstance(a, str) else a for a in record.args
            )
        return True


def redact_access_log() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactLinkTokens) for f in access.filters):
        access.addFilter(RedactLinkTokens())


def security_answers(form: ui.Form) -> tuple[SecurityAnswer, ...]:
    """The three questions and answers of a portal form; a question of one's own, when
    written, wins over the chosen one."""
    return tuple(
        SecurityAnswer(
            question=form.get(f"own_question{n}").strip() or form.get(f"question{n}"),
            answer=form.get(f"answer{n}"),
        )
        for n in (1, 2, 3)
    )
