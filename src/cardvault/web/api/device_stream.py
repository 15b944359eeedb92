"""A device's event stream (server-sent events), kept open for as long as the phone wants.

Thousands of these are idle at any time, so their upkeep must not crowd out the requests
that sign people in: every 15 s a keep-alive comment (and a presence refresh), every 60 s a
database check that the device and its card are still usable (a safety net: revocation is
also published on the channel and closes the stream at once). Upkeep runs in worker threads
behind a small limiter of its own, and each stream's schedule starts at a random offset so
that phones that reconnected together (after a restart) do not beat together.
"""

from __future__ import annotations

import json
import secrets
import time
import weakref
from asyncio import AbstractEventLoop, get_running_loop
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any, TypeVar

from anyio import CapacityLimiter, to_thread
from starlette.concurrency import run_in_threadpool

from cardvault.json_types import JsonObject
from cardvault.services.devices import push_answers, registry
from cardvault.services.devices.channel import PRESENCE_TTL_SECONDS, channel, device_topic
from cardvault.services.devices.requests import DeviceCaller
from cardvault.services.system.metrics import metrics
from cardvault.services.system.runtime import Runtime
from cardvault.store.types import new_id

KEEPALIVE_SECONDS = 15.0
CHECK_SECONDS = 60.0
UPKEEP_THREADS = 4
T = TypeVar("T")
_limiters: weakref.WeakKeyDictionary[AbstractEventLoop, CapacityLimiter] = (
    weakref.WeakKeyDictionary()
)


def sse(event: str, data: JsonObject) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def _upkeep(fn: Callable[..., T], *args: Any) -> T:
    loop = get_running_loop()
    limiter = _limiters.get(loop)
    if limiter is None:
        limiter = _limiters[loop] = CapacityLimiter(UPKEEP_THREADS)
    return await to_thread.run_sync(fn, *args, limiter=limiter)


def _delivered(rt: Runtime, event: JsonObject) -> None:
    """Push latency: from the request to its event going down the phone's stream."""
    view = event.get("challenge")
    if event.get("type") != "challenge" or not isinstance(view, dict):
        return
    try:
        sent = rt.clock() - datetime.fromisoformat(str(view.get("created_at")))
    except (TypeError, ValueError):
        return
    metrics(rt).push_delivery.observe(max(0.0, sent.total_seconds()))


def _jitter(seconds: float) -> float:
    return seconds * (0.5 + secrets.randbelow(1000) / 2000)


async def stream(rt: Runtime, caller: DeviceCaller) -> AsyncIterator[str]:
    ch = await run_in_threadpool(channel, rt)
    sub = ch.subscribe([device_topic(caller.device_id)])
    conn = new_id()
    try:
        await run_in_threadpool(ch.set_present, caller.device_id, conn, PRESENCE_TTL_SECONDS)
        yield f"retry: 3000\n{sse('hello', {'device_id': caller.device_id})}"
        for view in await run_in_threadpool(push_answers.pending_for_device, rt, caller):
            yield sse("challenge", {"type": "challenge", "challenge": view})
        now = time.monotonic()
        keepalive, check = now + _jitter(KEEPALIVE_SECONDS), now + _jitter(CHECK_SECONDS)
        while True:
            event = await sub.get(timeout=max(0.0, min(keepalive, check) - time.monotonic()))
            if event is not None:
                yield sse(str(event.get("type", "message")), event)
                _delivered(rt, event)
                if event.get("type") == "revoked":
                    return
            now = time.monotonic()
            if now >= check:
                check = now + CHECK_SECONDS
                if not await _upkeep(registry.still_usable, rt, caller.device_id):
                    yield sse("revoked", {"type": "revoked", "reason": "no longer usable"})
                    return
            if now >= keepalive:
                keepalive = now + KEEPALIVE_SECONDS
                await _upkeep(ch.set_present, caller.device_id, conn, PRESENCE_TTL_SECONDS)
                yield ": keepalive\n\n"
    finally:
        sub.close()
        ch.set_absent(caller.device_id, conn)
