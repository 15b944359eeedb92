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

from cardvault.domain.rate_limit import Bucket
from cardvault.services.rate_limits import check as rate_limits
from cardvault.web.client_address import client_address
from cardvault.web.deps import runtime

__all__ = ["Bucket", "per_address"]


def per_address(bucket: Bucket) -> Any:
    """A route dependency: one request of ``bucket`` from the caller's address."""

    def check(request: Request) -> None:
        # a plain function: FastAPI runs it in a worker thread, where Redis may be asked
        rt = runtime(request)
        address = client_address(request, rt.settings.trusted_proxies)
        rate_limits.check_address(rt, bucket, address)

    return Depends(check)
