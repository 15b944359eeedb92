"""Fixed-window counters for the rate limits: in this process, or in Redis for all instances.

``hit(key, window_seconds)`` counts one request and answers how many the key's window has
seen (this one included) and how long it still runs. The window opens with the first hit of
a key and closes ``window_seconds`` later; both stores agree on that.

* :class:`LocalCounters`: a dictionary under a lock, bounded in size (the oldest windows go
  first), for one instance or when Redis is down.
* :class:`RedisCounters` (``CARDVAULT_REDIS_URL``): one Lua script per hit, so that INCR and
  the expiry are one atomic step on the Redis server (a key can never be left without an
  expiry), and every instance counts in the same window; Redis's clock alone times it.
* :class:`FallbackCounters`: Redis, and the local counters while Redis does not answer; a
  failed Redis is tried again after a pause rather than on every request, so an outage
  costs one short timeout, not one per request. Counting locally during an outage makes the
  limits per instance for that time, never absent and never a 500.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger("cardvault.rate_limits")

#: keys the local counters keep at most (about 100 bytes each)
LOCAL_MAX_KEYS = 100_000
#: Redis is asked again this long after it failed
REDIS_RETRY_SECONDS = 5.0
#: a rate-limit check waits at most this long for Redis before counting locally
REDIS_TIMEOUT_SECONDS = 0.5

# INCR, then give a key without an expiry (a new one) its window; answers count and ms left.
_HIT = """
local count = redis.call('INCR', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return {count, left}
"""


class Counters(Protocol):
    """Fixed-window counters: in this process, or in Redis between instances."""

    def hit(self, key: str, window_seconds: int) -> tuple[int, float]:
        """Count one request; (requests in this window, seconds until it closes)."""
        ...

    def close(self) -> None:
        """Let go of the connection, if any."""
        ...


class LocalCounters:
    """Windows in this process's memory."""

    def __init__(
        self, max_keys: int = LOCAL_MAX_KEYS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()
        # key → [count, closes_at], oldest window first
        self._windows: OrderedDict[str, list[float]] = OrderedDict()

    def hit(self, key: str, window_seconds: int) -> tuple[int, float]:
        """Count one hit in the key's window: the count and the seconds left in the window."""
        now = self._clock()
        with self._lock:
            window = self._windows.get(key)
            if window is None or window[1] <= now:
                self._windows.pop(key, None)
                window = self._windows[key] = [0, now + window_seconds]
                self._trim(now)
            window[0] += 1
            return int(window[0]), window[1] - now

    def _trim(self, now: float) -> None:
        """Drop closed windows from the old end, and the oldest beyond the size bound."""
        while self._windows:
            oldest_key, (_, closes_at) = next(iter(self._windows.items()))
            if closes_at > now and len(self._windows) <= self._max_keys:
                return
            del self._windows[oldest_key]

    def close(self) -> None:
        """Nothing to release."""


class RedisCounters:
    """Windows in Redis, shared by every instance that uses the same Redis and prefix."""

    def __init__(self, url: str, prefix: str) -> None:
        import redis

        self._prefix = prefix
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        )
        self._hit: Any = self._client.register_script(_HIT)

    def hit(self, key: str, window_seconds: int) -> tuple[int, float]:
        """Raises ``redis.RedisError`` when Redis does not answer."""
        count, left_ms = self._hit(keys=[f"{self._prefix}:rl:{key}"], args=[window_seconds * 1000])
        return int(count), int(left_ms) / 1000

    def close(self) -> None:
        """Close the Redis connection."""
        self._client.close()


class FallbackCounters:
    """Redis first; the local counters whenever it fails, until it is worth asking again."""

    def __init__(
        self,
        primary: Counters,
        fallback: Counters,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._primary = primary
        self._fallback = fallback
        self._clock = clock
        self._lock = threading.Lock()
        self._retry_at = 0.0

    def hit(self, key: str, window_seconds: int) -> tuple[int, float]:
        """Count in Redis, or in this process while Redis does not answer."""
        import redis

        if self._clock() >= self._retry_at:
            try:
                return self._primary.hit(key, window_seconds)
            except redis.RedisError as exc:
                self._failed(exc)
        return self._fallback.hit(key, window_seconds)

    def _failed(self, exc: Exception) -> None:
        with self._lock:
            first = self._retry_at <= self._clock()
            self._retry_at = self._clock() + REDIS_RETRY_SECONDS
        if first:
            log.warning(
                "rate limits: Redis does not answer (%s); counting in this instance for now",
                type(exc).__name__,
            )

    def close(self) -> None:
        """Close the Redis connection."""
        self._primary.close()


def open_counters(redis_url: str | None, prefix: str) -> Counters:
    """The counters for this configuration: Redis with a local fallback, or local only."""
    if not redis_url:
        return LocalCounters()
    try:
        redis_counters = RedisCounters(redis_url, prefix)
    except ValueError as exc:  # a URL redis cannot read; the push channel says so loudly too
        log.error("rate limits: cannot use CARDVAULT_REDIS_URL (%s); counting locally", exc)
        return LocalCounters()
    return FallbackCounters(redis_counters, LocalCounters())
