"""Refuse oversized request bodies before anything reads them, and JSON bodies over the
depth and number limits before FastAPI parses them (its parser recurses without limit)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from email.message import Message as MimeHeader

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cardvault import strict_json
from cardvault.web.errors import problem, problem_of


class BodyLimit:
    """ASGI middleware: 413 problem+json once a body exceeds ``max_bytes``.

    ``own_refusals`` maps a path to the answer its protocol gives instead (OCSP answers a
    too-large request with its own malformedRequest, RFC 6960 §2.3); ``larger`` maps the few
    paths that take a file (the RA's CSV import) to their own, larger limit."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        own_refusals: Mapping[str, Callable[[], Response]] | None = None,
        larger: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.own_refusals = dict(own_refusals or {})
        self.larger = dict(larger or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get(scope.get("path", ""), self.max_bytes)
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            if declared.isdigit() and int(declared) <= _DRAIN_BYTES:
                await _drain(receive)
            await self._refuse(scope, receive, send, limit)
            return
        seen, started, refused = 0, False, False

        async def limited() -> Message:
            # Refuse here rather than only raising: FastAPI turns an exception while it
            # reads a body into its own 400, which would hide the 413.
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    if not (started or refused):
                        refused = True
                        await self._refuse(scope, receive, send, limit)
                    raise _TooLarge
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 is already out; drop what the app answers after it
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, guarded)
        except _TooLarge:
            if not (started or refused):
                await self._refuse(scope, receive, send, limit)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        own = self.own_refusals.get(scope.get("path", ""))
        if own is not None:
            await own()(scope, receive, send)
            return
        title = f"The request body is larger than {limit} bytes."
        await problem(413, "too_large", title, instance=scope.get("path"))(scope, receive, send)


class _TooLarge(Exception):
    pass


#: A body declared this large or smaller is read and dropped before the refusal goes out:
#: answering while the client still sends makes the kernel reset the connection, and the
#: client then sees a broken pipe instead of the refusal. Larger bodies are refused at once.
_DRAIN_BYTES = 2 * 1024 * 1024


async def _drain(receive: Receive) -> None:
    more = True
    while more:
        message = await receive()
        more = message["type"] == "http.request" and message.get("more_body", False)


#: bodies up to this size are checked on the event loop; larger ones in a worker thread
_INLINE_CHECK_BYTES = 4096


class JsonLimits:
    """ASGI middleware: a JSON body over the limits of :mod:`cardvault.strict_json` gets a
    400 problem+json naming the limit, before any route sees it.

    The bodies FastAPI would parse as JSON are checked: ``application/json``,
    ``application/*+json`` and bodies without a content type. Install it inside
    :class:`BodyLimit`, which bounds what is buffered here. A body that is simply not JSON
    passes on, so the route answers as it always has (422 with FastAPI's own detail).
    """

    def __init__(self, app: ASGIApp, max_depth: int, max_bytes: int) -> None:
        self.app = app
        self.max_depth = max_depth
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _parsed_as_json(scope):
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay(message, receive), send)
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
        refusal = await self._refusal(body) if body else None
        if refusal is not None:
            response = problem_of(refusal, scope.get("path"))
            await response(scope, receive, send)
            return
        await self.app(scope, _replay({"type": "http.request", "body": body}, receive), send)

    async def _refusal(self, body: bytes) -> strict_json.JsonLimitExceeded | None:
        try:
            if len(body) <= _INLINE_CHECK_BYTES:
                self._parse(body)
            else:
                await run_in_threadpool(self._parse, body)
        except strict_json.JsonLimitExceeded as exc:
            return exc
        except strict_json.JsonMalformed:
            return None  # not a refusal to make here: FastAPI says what is wrong with it
        return None

    def _parse(self, body: bytes) -> None:
        strict_json.loads(
            body, max_depth=self.max_depth, max_bytes=self.max_bytes, what="The request body"
        )


def _parsed_as_json(scope: Scope) -> bool:
    """Whether FastAPI would read this body as JSON (its own content-type rule)."""
    if scope.get("method") in ("GET", "HEAD", "OPTIONS"):
        return False
    value = _header(scope, b"content-type")
    return True if not value else _json_type(value)


def _header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of a header (without building a dict of them all per request)."""
    return next((v for n, v in scope.get("headers") or () if n == name), None)


@functools.lru_cache(maxsize=64)
def _json_type(value: bytes) -> bool:
    """Parsed once per distinct content type: clients send the same few, over and over."""
    header = MimeHeader()
    header["content-type"] = value.decode("latin-1")
    subtype = header.get_content_subtype()
    return header.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def _replay(first: Message, receive: Receive) -> Receive:
    """``receive`` that hands over the buffered message first, then the connection's own
    (a streaming answer still learns of the disconnect)."""
    pending = [first]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay
