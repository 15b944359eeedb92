"""Encrypted request and response bodies (``application/jose``) at the HTTP edge."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from cardvault.crypto import envelope
from cardvault.errors import InvalidInput
from cardvault.services.system.runtime import Runtime
from cardvault.services.transport import envelopes

JOSE = "application/jose"
M = TypeVar("M", bound=BaseModel)

JOSE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            JOSE: {
                "schema": {
                    "type": "string",
                    "description": "Compact JWE (RSA-OAEP-256, A256GCM) of the claims",
                }
            }
        },
    },
}


async def read_jose(request: Request) -> str:
    """The compact JWE a request carries (not yet opened)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != JOSE:
        raise InvalidInput(f"Send the request body as {JOSE} (a compact JWE).")
    raw = await request.body()
    try:
        return raw.decode("ascii").strip()
    except UnicodeDecodeError as exc:
        raise InvalidInput("The body is not a compact JWE.") from exc


def opened(rt: Runtime, token: str, model: type[M]) -> tuple[M, bytearray]:
    """Decrypt, refuse replays, validate the claims; returns them and the response key.
    Blocking (RSA, the nonce INSERT): call it off the event loop."""
    envelope_ = envelopes.open_request(rt, token)
    try:
        return model.model_validate(envelope_.claims), envelope_.response_key
    except ValidationError as exc:
        fields = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InvalidInput(f"The request is not valid: {fields}.") from None


async def open_body(request: Request, rt: Runtime, model: type[M]) -> tuple[M, bytearray]:
    """:func:`read_jose` then :func:`opened` in the thread pool. A route that goes on to
    blocking work may instead call both in one trip to the pool (the sign-in, a signature)."""
    return await run_in_threadpool(opened, rt, await read_jose(request), model)


def sealed(response_key: bytearray, payload: BaseModel | dict[str, Any]) -> Response:
    claims = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload
    token = envelope.seal_response(response_key, claims)
    response_key[:] = bytes(len(response_key))
    return Response(token, media_type=JOSE, headers={"Cache-Control": "no-store"})
