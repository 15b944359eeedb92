"""The PC/SC channel's relay (DESIGN §3.8): a connector inserts a card, then sends its APDUs.

Every request that carries a key (SK of a card session, or an issuance key) or an APDU is a
JWE both ways; the answer APDU comes back encrypted too (it may be a decrypted secret).

The two APDU routes are declared here for FastAPI (their OpenAPI description) but served by
:class:`ApduEndpoint`, which ``web/edge.py`` calls directly: an APDU is the hot path, and
FastAPI's routing, middleware layers and dependency injection cost a fifth of one (issue 16).
"""

from __future__ import annotations

import base64
import binascii
import inspect
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from cardvault.card.piv import ATR
from cardvault.domain.card_pin import rule as card_pin_rule
from cardvault.errors import InvalidInput
from cardvault.services.piv import card_pin, issuance
from cardvault.services.piv import reader_links as links
from cardvault.services.piv.errors import LinkClosed
from cardvault.services.piv.ports import Mode
from cardvault.services.piv.relay import RelayAnswer, RelayRequest, relay
from cardvault.services.signin.errors import SessionInvalid
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.services.transport import channel, link_channel
from cardvault.web.client_address import actor_for
from cardvault.web.deps import bearer_token, runtime
from cardvault.web.jose import jose_openapi, open_body, opened_on_link, read_jose, sealed

router = APIRouter(prefix="/api/v1/piv", tags=["pc/sc"])

#: an extended command APDU with 64 KiB of data, in base64, fits in this
_MAX_APDU_B64 = 87_400
LinkId = Annotated[str, Path(max_length=36)]
T = TypeVar("T")


def _b64(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(f"{what} must be base64.", field=what) from exc


def _out(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


class SessionIn(BaseModel):
    """What every request made inside a card session carries: its token and key SK."""

    token: str = Field(min_length=10, max_length=200)
    session_key: str = Field(min_length=40, max_length=60)


S = TypeVar("S", bound=SessionIn)


class LinkIn(SessionIn):
    serial: str | None = Field(default=None, max_length=20)


class LinkOut(BaseModel):
    link_id: str
    serial: str
    atr: str = Field(description="the card's ATR (hex), for the virtual reader")
    objects: dict[str, str | None] = Field(description="GET DATA answers by tag (hex), or null")
    constant: dict[str, str] = Field(description="answers (hex) to probe APDUs (hex)")
    expires_at: datetime
    idle_expires_at: datetime
    channel_key: str | None = Field(
        default=None,
        description="the link's channel key CK, base64 (kid = link_id): seal its APDUs to it",
    )


class _ApduBase(BaseModel):
    token: str = Field(min_length=10, max_length=200)
    link_id: str = Field(max_length=36)
    seq: int = Field(ge=1, lt=2**62, description="grows with every request of the link")
    apdu: str = Field(min_length=4, max_length=_MAX_APDU_B64, description="base64")
    power_up: bool = Field(default=False, description="the reader powered the card up first")
    drain: bool = Field(
        default=False, description="answer a long response whole; the connector cuts it up"
    )
    chain: list[Annotated[str, Field(max_length=400)]] = Field(
        default_factory=list,
        max_length=40,
        description="earlier parts of a chained command (CLA 10), base64, in order",
    )


A = TypeVar("A", bound=_ApduBase)


class ApduIn(_ApduBase):
    session_key: str = Field(min_length=40, max_length=60)


class ApduOut(BaseModel):
    response: str
    card_status: str
    expires_at: datetime
    idle_expires_at: datetime
    missing: list[str] = []
    whole: bool = False
    standing: dict[str, str] = Field(
        default_factory=dict,
        description="answers (hex) to APDUs (hex) the connector may give until its next request",
    )


class IssuanceIn(BaseModel):
    token: str = Field(min_length=10, max_length=200)
    user_id: str = Field(max_length=20)
    organisation: str = Field(max_length=32)


class IssuanceOut(BaseModel):
    link_id: str
    serial: str
    atr: str
    issuance_key: str
    holder: str
    organisation: str
    expires_at: datetime
    idle_expires_at: datetime
    channel_key: str | None = Field(
        default=None, description="the link's channel key CK, base64 (kid = link_id)"
    )


class IssuanceApduIn(_ApduBase):
    issuance_key: str = Field(min_length=40, max_length=60)


class PinIn(SessionIn):
    new_pin: str = Field(min_length=1, max_length=16)
    current_pin: str | None = Field(
        default=None,
        max_length=16,
        description="needed unless the PIN is set the first time "
        "or unblocked in a session opened after it was blocked",
    )


class PinOut(BaseModel):
    serial: str
    outcome: str = Field(description="set, changed or unblocked")


class PinStatusIn(SessionIn):
    """Only the session: the card is the session's."""


class PinStatusOut(BaseModel):
    serial: str
    pin_set: bool
    blocked: bool
    attempts_left: int
    may_unblock: bool
    #: the organisation's shortest card PIN, and its rule in words ("7 or 8 digits")
    minimum: int
    rule: str


class LinkStatusOut(BaseModel):
    alive: bool
    expires_at: datetime | None = None
    idle_expires_at: datetime | None = None


async def _in_session(
    request: Request,
    rt: Runtime,
    model: type[S],
    call: Callable[[S, Actor, bytes], T],
) -> tuple[T, bytearray]:
    """Open the envelope of a request made inside a card session, then run ``call`` (the
    service, given the body, the caller and the session key SK) in the thread pool; its
    result and the key to seal the answer under."""
    body, rkey = await open_body(request, rt, model)
    actor = actor_for(request, rt)
    key = _b64(body.session_key, "session_key")
    return await run_in_threadpool(call, body, actor, key), rkey


@router.post("/links", openapi_extra=jose_openapi(LinkIn, LinkOut), response_class=Response)
async def open_link(request: Request, rt: Annotated[Runtime, Depends(runtime)]) -> Response:
    """Insert the card of this card session into a new virtual reader link."""
    link, rkey = await _in_session(
        request,
        rt,
        LinkIn,
        lambda body, actor, key: links.open_use_link(
            rt, actor, token=body.token, session_key=key, serial=body.serial
        ),
    )
    ck = await run_in_threadpool(channel.link_key, rt, link.link_id)
    objects = {f"{tag:x}": None if v is None else v.hex() for tag, v in link.objects.items()}
    out = LinkOut(
        link_id=link.link_id,
        serial=link.serial,
        atr=ATR.hex(),
        objects=objects,
        constant={apdu.hex(): answer.hex() for apdu, answer in link.constant.items()},
        expires_at=link.expires_at,
        idle_expires_at=link.idle_expires_at,
        channel_key=_out(ck),
    )
    return sealed(rkey, out)


@router.post("/apdu", openapi_extra=jose_openapi(ApduIn, ApduOut), response_class=Response)
async def apdu(request: Request, rt: Annotated[Runtime, Depends(runtime)]) -> Response:
    """One command APDU for the card in a holder's link; the response APDU comes back."""
    return await _use_apdu(request, rt)


async def _use_apdu(request: Request, rt: Runtime) -> Response:
    return await _relayed(
        request, rt, ApduIn, Mode.USE, lambda body: _b64(body.session_key, "session_key")
    )


@router.post(
    "/issuance", openapi_extra=jose_openapi(IssuanceIn, IssuanceOut), response_class=Response
)
async def start_issuance(request: Request, rt: Annotated[Runtime, Depends(runtime)]) -> Response:
    """Insert a blank card for a person into the RA's reader (an issuing RA role is needed)."""
    body, rkey = await open_body(request, rt, IssuanceIn)
    started = await run_in_threadpool(
        issuance.start,
        rt,
        actor_for(request, rt),
        token=body.token,
        user_id=body.user_id,
        org_code=body.organisation,
    )
    ck = await run_in_threadpool(channel.link_key, rt, started.link_id)
    out = IssuanceOut(
        link_id=started.link_id,
        serial=started.serial,
        atr=ATR.hex(),
        issuance_key=_out(started.issuance_key),
        holder=started.holder,
        organisation=started.organisation,
        expires_at=started.expires_at,
        idle_expires_at=started.idle_expires_at,
        channel_key=_out(ck),
    )
    return sealed(rkey, out)


@router.post(
    "/issuance/apdu", openapi_extra=jose_openapi(IssuanceApduIn, ApduOut), response_class=Response
)
async def issuance_apdu(request: Request, rt: Annotated[Runtime, Depends(runtime)]) -> Response:
    """One command APDU for a card being issued; the answer says what is still missing."""
    return await _issuance_apdu(request, rt)


async def _issuance_apdu(request: Request, rt: Runtime) -> Response:
    return await _relayed(
        request,
        rt,
        IssuanceApduIn,
        Mode.ISSUANCE,
        lambda body: _b64(body.issuance_key, "issuance_key"),
    )


async def _relayed(
    request: Request,
    rt: Runtime,
    model: type[A],
    mode: Mode,
    key_of: Callable[[A], bytes],
) -> Response:
    """One APDU of a reader link in one trip to the thread pool: envelope, APDU, sealed
    answer; ``key_of`` reads the key the link's state is sealed under from the body."""
    token, actor = await read_jose(request), actor_for(request, rt)

    def run() -> Response:
        body, rkey, ch = opened_on_link(rt, token, model)
        req = _relay_request(mode, body, key_of(body), ch)
        try:
            answer = relay(rt, actor, req)
        except (LinkClosed, SessionInvalid):
            if ch is not None:
                link_channel.forget(ch.request.kid)
            raise
        return sealed(rkey, _apdu_out(answer))

    return await run_in_threadpool(run)


#: the routes :class:`ApduEndpoint` serves: path -> what serves it
_DIRECT: dict[str, Callable[[Request, Runtime], Awaitable[Response]]] = {
    f"{router.prefix}/apdu": _use_apdu,
    f"{router.prefix}/issuance/apdu": _issuance_apdu,
}
#: their FastAPI routes, named in the request's log event (``request_log.record``)
_DECLARED = {r.path: r for r in router.routes if isinstance(r, APIRoute) and r.path in _DIRECT}


class ApduEndpoint:
    """Plain ASGI for ``POST`` of an APDU, which ``web/edge.py`` calls instead of FastAPI.

    The edge has already set the request id and admitted the client, and still adds the
    answer's headers and logs the request; the body limit wraps this like every route (see
    ``app.py``). Errors become problems through the app's own exception handlers
    (``web/errors.py``), found as Starlette finds them, so refusals read as on every route.
    """

    def __init__(self, rt: Runtime, handlers: Mapping[Any, Callable[..., Any]]) -> None:
        self.rt = rt
        self.handlers = handlers

    @staticmethod
    def paths() -> tuple[str, ...]:
        return tuple(_DIRECT)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        scope["route"] = _DECLARED[path]
        request = Request(scope, receive)
        try:
            response: Response = await _DIRECT[path](request, self.rt)
        except Exception as exc:
            handler = next(
                (self.handlers[c] for c in type(exc).__mro__ if c in self.handlers), None
            )
            if handler is None:
                raise
            answer = handler(request, exc)
            response = await answer if inspect.isawaitable(answer) else answer
        await response(scope, receive, send)


@router.post("/pin", openapi_extra=jose_openapi(PinIn, PinOut), response_class=Response)
async def set_pin(request: Request, rt: Annotated[Runtime, Depends(runtime)]) -> Response:
    """Set, change or unblock the card PIN of this card session's card (DESIGN §3.8)."""
    changed, rkey = await _in_session(
        request,
        rt,
        PinIn,
        lambda body, actor, key: card_pin.set_pin(
            rt,
            actor,
            token=body.token,
            session_key=key,
            new_pin=body.new_pin,
            current_pin=body.current_pin,
        ),
    )
    return sealed(rkey, PinOut(serial=changed.serial, outcome=changed.outcome))


@router.post(
    "/pin/status", openapi_extra=jose_openapi(PinStatusIn, PinStatusOut), response_class=Response
)
async def pin_status(request: Request, rt: Annotated[Runtime, Depends(runtime)]) -> Response:
    """Whether this card session's card has a card PIN, and whether it is blocked."""
    found, rkey = await _in_session(
        request,
        rt,
        PinStatusIn,
        lambda body, actor, key: card_pin.status(rt, actor, token=body.token, session_key=key),
    )
    return sealed(
        rkey,
        PinStatusOut(
            serial=found.serial,
            pin_set=found.pin_set,
            blocked=found.blocked,
            attempts_left=found.attempts_left,
            may_unblock=found.may_unblock,
            minimum=found.minimum,
            rule=card_pin_rule(found.minimum),
        ),
    )


@router.get("/links/{link_id}", response_model=LinkStatusOut)
def link_status(
    link_id: LinkId,
    rt: Annotated[Runtime, Depends(runtime)],
    token: Annotated[str, Depends(bearer_token)],
) -> LinkStatusOut:
    """Whether the link still works; does not restart the session's idle timer."""
    found = links.status(rt, token=token, link_id=link_id)
    return LinkStatusOut(
        alive=found.alive, expires_at=found.expires_at, idle_expires_at=found.idle_expires_at
    )


@router.delete("/links/{link_id}", status_code=204)
def close_link(
    link_id: LinkId,
    request: Request,
    rt: Annotated[Runtime, Depends(runtime)],
    token: Annotated[str, Depends(bearer_token)],
) -> Response:
    """Remove the card from the reader (an issuance key stops working at once)."""
    links.close(rt, actor_for(request, rt), token=token, link_id=link_id)
    return Response(status_code=204)


def _relay_request(
    mode: Mode, body: _ApduBase, key: bytes, ch: link_channel.LinkChannel | None = None
) -> RelayRequest:
    return RelayRequest(
        jti=None if ch is None else ch.request.jti,
        jti_expires=None if ch is None else ch.jti_expires,
        mode=mode,
        token=body.token,
        key=key,
        link_id=body.link_id,
        seq=body.seq,
        apdu=_b64(body.apdu, "apdu"),
        power_up=body.power_up,
        drain=body.drain,
        chain=tuple(_b64(part, "chain") for part in body.chain),
    )


def _apdu_out(answer: RelayAnswer) -> ApduOut:
    return ApduOut(
        response=_out(answer.response),
        card_status=answer.card_status,
        expires_at=answer.expires_at,
        idle_expires_at=answer.idle_expires_at,
        missing=list(answer.missing),
        whole=answer.whole,
        standing={apdu.hex(): local.hex() for apdu, local in answer.standing.items()},
    )
