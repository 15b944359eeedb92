"""Encrypted request and response bodies (``application/jose``) at the HTTP edge."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from cardvault.crypto import channel as cchannel
from cardvault.crypto import envelope
from cardvault.errors import InvalidInput
from cardvault.json_types import JsonObject
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.services.transport import channel, envelopes, link_channel
from cardvault.web.client_address import actor_for
from cardvault.web.errors import PROBLEM, PROBLEM_SCHEMA

JOSE = "application/jose"
M = TypeVar("M", bound=BaseModel)

#: a compact JWE in a request body, as OpenAPI describes it
_JWE_SCHEMA: JsonObject = {
    "type": "string",
    "description": (
        "Compact JWE of the claims: an opening envelope (ECDH-ES+A256KW or "
        "RSA-OAEP-256 to a transport key, A256GCM) or, inside a card session "
        "or reader link, a channel envelope (dir, A256GCM, kid = its id)"
    ),
}
JOSE_BODY: JsonObject = {
    "requestBody": {"required": True, "content": {JOSE: {"schema": _JWE_SCHEMA}}},
}


def jose_openapi(claims: type[BaseModel], answer: type[BaseModel] | None = None) -> JsonObject:
    """OpenAPI for an envelope route: the body is a compact JWE (a string), and what is
    inside it -- the claims, and the answer's claims -- is described as JSON Schema under
    ``x-cardvault-claims``; refusals are problem+json."""
    responses: JsonObject = {
        "4XX": {
            "description": "Refused (nothing was done)",
            "content": {PROBLEM: {"schema": PROBLEM_SCHEMA}},
        },
    }
    if answer is not None:
        sealed_answer: JsonObject = {
            "type": "string",
            "description": "Compact JWE (dir, A256GCM) under the request's response key or "
            "the session channel's key",
            "x-cardvault-claims": _schema(answer),
        }
        responses["200"] = {
            "description": "The sealed answer",
            "content": {JOSE: {"schema": sealed_answer}},
        }
    return {
        "requestBody": {
            "required": True,
            "content": {JOSE: {"schema": {**_JWE_SCHEMA, "x-cardvault-claims": _schema(claims)}}},
        },
        "responses": responses,
    }


def _schema(model: type[BaseModel]) -> JsonObject:
    schema = model.model_json_schema(ref_template="#/$defs/{model}")
    schema["description"] = schema.get("description") or f"{model.__name__}, inside the JWE"
    return schema


async def read_jose(request: Request) -> str:
    """The compact JWE a request carries (not yet opened)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != JOSE:
        raise InvalidInput(f"Send the request body as {JOSE} (a compact JWE).")
    raw = await request.body()
    try:
        return raw.decode("ascii").strip()
    except UnicodeDecodeError as exc:
        raise InvalidInput("The body is not a compact JWE.") from exc


class ChannelReply(bytearray):
    """A session channel's CK, with the ``kid`` and request ``jti`` its answer is sealed for."""

    def __init__(self, key: bytearray, kid: str, jti: str) -> None:
        super().__init__(key)
        key[:] = bytes(len(key))
        self.kid, self.jti = kid, jti


def opened(rt: Runtime, token: str, model: type[M]) -> tuple[M, bytearray]:
    """Decrypt (an opening or a channel envelope), refuse replays, validate the claims;
    returns them and what to seal the answer with. Blocking (the key work, the nonce
    INSERT): call it off the event loop."""
    envelope.check_size(token, rt.settings.max_body_bytes)
    kid = cchannel.is_channel(token)
    reply: bytearray
    if kid is not None:
        ch = channel.open_request(rt, token, kid)
        claims, reply = ch.request.claims, ChannelReply(ch.key, kid, ch.request.jti)
    else:
        envelope_ = envelopes.open_request(rt, token)
        claims, reply = envelope_.claims, envelope_.response_key
    return validated(claims, model), reply


def opened_on_link(
    rt: Runtime, token: str, model: type[M]
) -> tuple[M, bytearray, link_channel.LinkChannel | None]:
    """:func:`opened` for the PC/SC relay: a link's channel envelope is opened under the CK
    this process keeps (link_channel.py) and its ``jti`` is *not* yet remembered -- the
    relay remembers it when it commits the APDU, and finds the link alive. Any other
    envelope is opened (and spent) as :func:`opened` does; then the third item is None."""
    envelope.check_size(token, rt.settings.max_body_bytes)
    kid = cchannel.is_channel(token)
    if kid is None:
        return (*opened(rt, token, model), None)
    ch = link_channel.open_request(rt, token, kid)
    reply = ChannelReply(ch.key, kid, ch.request.jti)
    return validated(ch.request.claims, model), reply, ch


def validated(claims: JsonObject, model: type[M]) -> M:
    """The claims as ``model``, or InvalidInput naming the fields that are wrong."""
    try:
        return model.model_validate(claims)
    except ValidationError as exc:
        fields = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InvalidInput(f"The request is not valid: {fields}.") from None


async def open_body(request: Request, rt: Runtime, model: type[M]) -> tuple[M, bytearray]:
    """:func:`read_jose` then :func:`opened` in the thread pool. A route that goes on to
    blocking work calls :func:`in_one_trip` instead (the sign-in, a signature)."""
    return await run_in_threadpool(opened, rt, await read_jose(request), model)


async def in_one_trip(
    request: Request,
    rt: Runtime,
    model: type[M],
    step: Callable[[Actor, M], BaseModel | dict[str, Any]],
) -> Response:
    """Open the envelope, run ``step`` and seal its answer in one trip to the thread pool:
    the routes whose step blocks too (a sign-in, a signature) pay one hand-off, not two."""
    token, actor = await read_jose(request), actor_for(request, rt)

    def run() -> Response:
        body, rkey = opened(rt, token, model)
        return sealed(rkey, step(actor, body))

    return await run_in_threadpool(run)


def sealed(response_key: bytearray, payload: BaseModel | dict[str, Any]) -> Response:
    claims = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload
    if isinstance(response_key, ChannelReply):
        token = cchannel.seal_channel_response(
            response_key, response_key.kid, response_key.jti, claims
        )
    else:
        token = envelope.seal_response(response_key, claims)
    response_key[:] = bytes(len(response_key))
    return Response(token, media_type=JOSE, headers={"Cache-Control": "no-store"})
