"""The HTTP edge of the device protocol: signed-request headers in, the calling device out;
and waiting on the push channel without holding a worker thread."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from cardvault.services.devices.channel import channel
from cardvault.services.devices.requests import DeviceCaller, SignedRequest, authenticate
from cardvault.services.system.runtime import Runtime
from cardvault.web.client_address import actor_for
from cardvault.web.deps import RuntimeDep

T = TypeVar("T")
#: re-read the database at least this often while waiting (pub/sub is fire-and-forget)
RECHECK_SECONDS = 5.0

DEVICE_HEADERS = {
    "device": "x-cardvault-device",
    "timestamp": "x-cardvault-timestamp",
    "nonce": "x-cardvault-nonce",
    "signature": "x-cardvault-signature",
}


def signed_path(request: Request) -> str:
    """The path and query exactly as the device signed them."""
    query = request.scope.get("query_string", b"").decode("latin-1")
    path = str(request.scope["path"])
    return path + (f"?{query}" if query else "")


async def device_caller(request: Request, rt: RuntimeDep) -> DeviceCaller:
    """FastAPI dependency: the device that signed this request (or 401)."""
    return await _caller(request, rt, for_challenges=False)


async def challenge_caller(request: Request, rt: RuntimeDep) -> DeviceCaller:
    """The same, for the push-challenge routes: also a phone whose card wrong passcodes
    locked, so that it can approve the holder's reset in the portal."""
    return await _caller(request, rt, for_challenges=True)


async def sign_in_caller(request: Request, rt: RuntimeDep) -> DeviceCaller:
    """The same, for a request that opens a card session (QR sign-in, the mobile agent):
    the device's signature is its second factor and counts toward the card's lock."""
    return await _caller(request, rt, for_challenges=False, sign_in=True)


async def _caller(
    request: Request, rt: Runtime, *, for_challenges: bool, sign_in: bool = False
) -> DeviceCaller:
    h = request.headers
    req = SignedRequest(
        device_id=h.get(DEVICE_HEADERS["device"], ""),
        timestamp=h.get(DEVICE_HEADERS["timestamp"], ""),
        nonce=h.get(DEVICE_HEADERS["nonce"], ""),
        signature=h.get(DEVICE_HEADERS["signature"], ""),
        method=request.method,
        path=signed_path(request),
        body=await request.body(),
    )
    return await run_in_threadpool(
        lambda: authenticate(
            rt, actor_for(request, rt), req, for_challenges=for_challenges, sign_in=sign_in
        )
    )


async def wait_for(
    rt: Runtime,
    topic: str,
    check: Callable[[], T],
    done: Callable[[T], bool],
    wait_seconds: float,
) -> T:
    """Re-run ``check`` (in a worker thread) whenever ``topic`` has news, until ``done``.

    Subscribing before the first check means an event published in between is not lost.
    """
    ch = await run_in_threadpool(channel, rt)
    sub = ch.subscribe([topic])
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            value = await run_in_threadpool(check)
            left = deadline - time.monotonic()
            if done(value) or left <= 0:
                return value
            await sub.get(timeout=min(RECHECK_SECONDS, left))
    finally:
        sub.close()
