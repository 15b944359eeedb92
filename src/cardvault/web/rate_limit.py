"""Rate limits at the HTTP edge: a dependency that anonymous routes declare.

``@router.post("/auth/login", dependencies=[per_address(Bucket.SIGNIN)])`` counts the request
against the caller's address before the route runs (and before any body is decrypted or a
web session is made); the identifier limits are checked by the route once the identifier is
known (:func:`cardvault.services.rate_limits.check.check_identifier`). A refusal is
:class:`~cardvault.services.rate_limits.check.RateLimited`: problem+json with Retry-After on the
API, an error page with Retry-After under ``/ra`` and ``/portal``.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from cardvault.domain.rate_limit import Bucket
from cardvault.services.rate_limits import check as rate_limits
from cardvault.web.client_address import client_address
from cardvault.web.deps import runtime_of

__all__ = ["Bucket", "per_address"]


def per_address(bucket: Bucket) -> Any:
    """A route dependency: one request of ``bucket`` from the caller's address."""

    async def check(request: Request) -> None:
        # counted on the event loop when the counters are this process's dictionary (a
        # lock and a lookup: cheaper than a hop to a worker thread); Redis is asked from a
        # worker thread, where its network round trip blocks no other request
        rt = runtime_of(request)
        address = client_address(request, rt.settings.trusted_proxies)
        if rt.settings.redis_url and rt.settings.rate_limits_enabled:
            await run_in_threadpool(rate_limits.check_address, rt, bucket, address)
        else:
            rate_limits.check_address(rt, bucket, address)

    return Depends(check)
