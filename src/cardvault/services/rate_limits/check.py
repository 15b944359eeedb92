"""Rate limits on anonymous endpoints (issue 14): check one request against its bucket.

The web layer calls :func:`check_address` for every request to an anonymous endpoint (a
FastAPI dependency declared on the route) and :func:`check_identifier` once it knows what
identifier the request names. Both raise :class:`RateLimited` (HTTP 429 with Retry-After).

Per-identifier limits are a trade-off, written down in the operator guide: anyone can spend
an identifier's budget, so a throttled identifier answers 429 to everyone, its holder too,
until its window closes. It is never silent (the 429 says to wait, and for how long), never
longer than the window, and it is not a lock: nothing is stored against the card. The
identifier is counted before it is looked up, known or not, so the 429 tells nothing about
whether it exists.
"""

from __future__ import annotations

import ipaddress
import logging

from cardvault.domain import rate_limit
from cardvault.domain.rate_limit import Bucket, Scope
from cardvault.services.rate_limits.counters import Counters, open_counters
from cardvault.services.rate_limits.errors import RateLimited
from cardvault.services.system.metrics import metrics
from cardvault.services.system.runtime import Runtime

log = logging.getLogger("cardvault.rate_limits")


def counters(rt: Runtime) -> Counters:
    """This process's counters (Redis when configured), made on first use."""
    return rt.memo(
        ("rate-limit-counters", rt.settings.redis_url, rt.settings.redis_prefix),
        lambda: open_counters(rt.settings.redis_url, rt.settings.redis_prefix),
    )


def check_address(rt: Runtime, bucket: Bucket, address: str | None) -> None:
    """Count a request from ``address`` to ``bucket``; RateLimited past the rate."""
    if _exempt(rt, address):
        return
    _count(rt, bucket, Scope.ADDRESS, rate_limit.address_key(address))


def check_identifier(rt: Runtime, bucket: Bucket, kind: str, value: str) -> None:
    """Count a request naming an identifier (known or not); RateLimited past the rate."""
    _count(rt, bucket, Scope.IDENTIFIER, rate_limit.identifier_key(kind, value))


def _count(rt: Runtime, bucket: Bucket, scope: Scope, key: str) -> None:
    rate = rt.settings.rate_limit(bucket, scope)
    if rate is None:
        return
    count, window_left = counters(rt).hit(f"{bucket.value}:{scope.value}:{key}", rate.seconds)
    wait = rate_limit.retry_after(count, window_left, rate)
    if wait is None:
        return
    if count == rate.requests + 1:  # once per window, not once per refused request
        log.warning(
            "rate limit reached: %s per %s (%s), %d s left",
            bucket.value,
            scope.value,
            key if scope is Scope.ADDRESS else "an identifier",
            wait,
        )
    metrics(rt).rate_limited.labels(bucket=bucket.value, scope=scope.value).inc()
    raise RateLimited(bucket=bucket, scope=scope, retry_after=wait)


def _exempt(rt: Runtime, address: str | None) -> bool:
    networks = rt.settings.rate_limit_exempt_networks
    if not networks:
        return False
    parsed = rt.memo(
        ("rate-limit-exempt", tuple(networks)),
        lambda: tuple(ipaddress.ip_network(n, strict=False) for n in networks),
    )
    return rate_limit.in_networks(address, parsed)
