"""The HTTP edge: one ASGI middleware around every route, in place of five stacked ones.

For every request, in this order: the request id (``web/request_log.py``), the ingress gate
(``web/ingress.py``: a refused client reaches nothing else), the app; and on the way out one
pass over the answer's headers -- the web-session cookie a page scheduled
(``web/ui/session.py``), the security headers (``web/ui/headers.py``) and the request id --
then the request's log event and metrics. The body limits (``web/limits.py``) stay their own
middleware inside it: they wrap ``receive``, which this one leaves alone.

One layer instead of five because each ASGI layer costs the event loop a coroutine and a
wrapped ``send`` per request, and every request pays them (issue 16). Refusals (the gate's,
the body limits') pass through the same ``send``, so they carry the security headers and
the request id like any answer.

A few hot routes are served ``direct``: the edge hands them to their own plain-ASGI app
(the PC/SC relay's APDUs, ``web/api/piv.py``) instead of FastAPI, whose routing, middleware
layers and dependency injection cost about a fifth of an APDU. Everything above stays as
for every route: the request id, the gate, the answer's headers and the log event.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cardvault.services.system.runtime import Runtime
from cardvault.store.types import new_id
from cardvault.web import request_log
from cardvault.web.ingress import IngressGate
from cardvault.web.ui.headers import add_security_headers
from cardvault.web.ui.session import pending_cookie

_REQUEST_ID = request_log.HEADER.encode()


class Edge:
    """ASGI middleware (outermost of ours): request id, ingress gate, answer headers, log."""

    def __init__(
        self, app: ASGIApp, rt: Runtime, direct: Mapping[str, ASGIApp] | None = None
    ) -> None:
        self.app = app
        self.rt = rt
        self.gate = IngressGate(rt)
        #: POST routes served without FastAPI: path -> their ASGI app
        self.direct = dict(direct or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_log.given_id(scope) or new_id()
        scope.setdefault("state", {})["request_id"] = rid
        token = request_log.REQUEST_ID.set(rid)
        began = time.perf_counter()
        status = 500  # what the client sees if the app fails before answering

        async def answer(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = _headers(scope, message, rid.encode())
            await send(message)

        try:
            refusal = await self.gate.refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, answer)
            elif scope["method"] == "POST" and scope["path"] in self.direct:
                await self.direct[scope["path"]](scope, receive, answer)
            else:
                await self.app(scope, receive, answer)
        finally:
            request_log.record(self.rt, scope, status, time.perf_counter() - began)
            request_log.REQUEST_ID.reset(token)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if await self.gate.refusal(scope) is None:
            await self.app(scope, receive, send)
        else:
            await send({"type": "websocket.close", "code": 1008})


def _headers(scope: Scope, start: Message, rid: bytes) -> list[tuple[bytes, bytes]]:
    """The answer's headers with the cookie, the security headers and the request id (one
    ``X-Request-ID``: ours replaces any the app set)."""
    headers = [(n, v) for n, v in start.get("headers") or () if n.lower() != _REQUEST_ID]
    cookie = pending_cookie(scope)
    if cookie is not None:
        headers.append((b"set-cookie", cookie))
    add_security_headers(headers)
    headers.append((_REQUEST_ID, rid))
    return headers
