"""Encrypted request and response bodies (``application/jose``) at the HTTP edge."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from cardvault.crypto import envelope
from cardvault.errors import InvalidInput
from cardvault.services import envelopes
from cardvault.services.runtime import Runtime

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


async def open_body(request: Request, rt: Runtime, model: type[M]) -> tuple[M, bytearray]:
    """Decrypt, refuse replays, validate the claims; returns them and the response key."""
    if request.headers.get("content-type", "").split(";")[0].strip() != JOSE:
        raise InvalidInput(f"Send the request body as {JOSE} (a compact JWE).")
    raw = await request.body()
    try:
        token = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise InvalidInput("The body is not a compact JWE.") from exc
    # RSA decryption and the nonce INSERT (which may wait on the database) stay off the loop
    opened = await run_in_threadpool(envelopes.open_request, rt, token.strip())
    try:
        return model.model_validate(opened.claims), opened.response_key
    except ValidationError as exc:
        fields = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InvalidInput(f"The request is not valid: {fields}.") from None


def sealed(response_key: bytearray, payload: BaseModel | dict[str, Any]) -> Response:
    claims = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload
    token = envelope.seal_response(response_key, claims)
    response_key[:] = bytes(len(response_key))
    return Response(token, media_type=JOSE, headers={"Cache-Control": "no-store"})
