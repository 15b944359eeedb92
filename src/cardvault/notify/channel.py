"""The push channel between server instances (DESIGN §4): events and device presence.

A push challenge is created where the PC's sign-in runs, but the phone may hold its event
stream open to another instance; the phone's answer must reach the PC's waiting request
wherever that runs. Services publish small JSON events on *topics* (``device:<id>``,
``challenge:<id>``, ``qr:<id>``); the web layer subscribes for as long as a connection is
open.

* :class:`LocalChannel` (no Redis): everything stays in this process. One instance works on
  its own.
* :class:`RedisChannel` (``CARDVAULT_REDIS_URL``): events go through Redis pub/sub, so every
  instance sees them. One pattern subscription per process (one thread) fans events out to
  the local subscribers; presence is a sorted set per device, scored by expiry, so a
  connection that died without saying goodbye drops out by itself.

Presence expiries are read off the runtime's clock (``rt.clock``, which the caller passes),
not the machine's: an instance whose clock is wrong (``CLOCK_OFFSET_SECONDS`` in the fault
tests) writes and reads them as every other time it keeps, and a test moves time by hand.

Pub/sub is fire-and-forget. Nothing depends on it for correctness: the database holds the
state, and subscribers re-read it on a timer; the channel only makes the common case fast.
Publishing happens in worker threads; subscribers live in an asyncio loop, so delivery
hops into the subscriber's loop with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Protocol

from cardvault import strict_json
from cardvault.errors import InvalidInput, Unavailable
from cardvault.json_types import JsonInput, JsonObject

log = logging.getLogger("cardvault.channel")
#: the runtime's clock (``Runtime.clock``): timezone-aware UTC
Clock = Callable[[], datetime]
#: an event as a subscriber receives it: JSON, whichever channel carried it
Event = JsonObject


class Subscription:
    """Events for some topics, delivered into the event loop that subscribed."""

    def __init__(self, hub: _Hub, topics: frozenset[str]) -> None:
        self.topics = topics
        self._hub = hub
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[Event] = asyncio.Queue()

    def deliver(self, event: Event) -> None:
        """Called from any thread."""
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is listening
            self._loop.call_soon_threadsafe(self._queue.put_nowait, event)

    async def get(self, timeout: float) -> Event | None:
        """The next event, or None after ``timeout`` seconds."""
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None

    def close(self) -> None:
        self._hub.remove(self)


class _Hub:
    """This process's subscribers by topic."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: dict[str, set[Subscription]] = {}

    def add(self, topics: Iterable[str]) -> Subscription:
        sub = Subscription(self, frozenset(topics))
        with self._lock:
            for topic in sub.topics:
                self._subs.setdefault(topic, set()).add(sub)
        return sub

    def remove(self, sub: Subscription) -> None:
        with self._lock:
            for topic in sub.topics:
                subs = self._subs.get(topic)
                if subs is not None:
                    subs.discard(sub)
                    if not subs:
                        del self._subs[topic]

    def deliver(self, topic: str, event: Event) -> None:
        with self._lock:
            subs = list(self._subs.get(topic, ()))
        for sub in subs:
            sub.deliver(event)

    def count(self) -> int:
        with self._lock:
            return sum(len(s) for s in self._subs.values())


class Channel(Protocol):
    def publish(self, topic: str, event: Mapping[str, JsonInput]) -> None: ...

    def subscribe(self, topics: Iterable[str]) -> Subscription:
        """Call inside a running event loop; close the subscription when done."""
        ...

    def set_present(self, device_id: str, connection_id: str, ttl_seconds: float) -> None: ...

    def set_absent(self, device_id: str, connection_id: str) -> None: ...

    def present(self, device_ids: Iterable[str]) -> set[str]: ...

    def close(self) -> None: ...


class LocalChannel:
    """One process: events and presence in memory."""

    def __init__(self, *, clock: Clock) -> None:
        self._clock = clock
        self._hub = _Hub()
        self._lock = threading.Lock()
        self._presence: dict[str, dict[str, float]] = {}

    def publish(self, topic: str, event: Mapping[str, JsonInput]) -> None:
        # through JSON, as Redis carries it: a subscriber sees the same thing either way
        delivered: Event = json.loads(json.dumps(dict(event)))
        self._hub.deliver(topic, delivered)

    def subscribe(self, topics: Iterable[str]) -> Subscription:
        return self._hub.add(topics)

    def set_present(self, device_id: str, connection_id: str, ttl_seconds: float) -> None:
        with self._lock:
            expires = self._clock().timestamp() + ttl_seconds
            self._presence.setdefault(device_id, {})[connection_id] = expires

    def set_absent(self, device_id: str, connection_id: str) -> None:
        with self._lock:
            conns = self._presence.get(device_id, {})
            conns.pop(connection_id, None)
            if not conns:
                self._presence.pop(device_id, None)

    def present(self, device_ids: Iterable[str]) -> set[str]:
        now = self._clock().timestamp()
        with self._lock:
            return {
                d for d in device_ids if any(t > now for t in self._presence.get(d, {}).values())
            }

    def close(self) -> None:
        """Nothing to release."""


class RedisChannel:
    """Several instances: events through Redis pub/sub, presence in Redis sorted sets."""

    def __init__(self, url: str, prefix: str = "cardvault", *, clock: Clock) -> None:
        import redis

        self._prefix = prefix
        self._clock = clock
        self._hub = _Hub()
        self._stop = threading.Event()
        self._client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        try:
            self._client.ping()
        except redis.RedisError as exc:
            raise Unavailable(
                f"Redis at {_safe_url(url)} does not answer: {exc}.",
                remedy="Start Redis, or unset CARDVAULT_REDIS_URL to run a single instance.",
            ) from exc
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="cardvault-redis", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise Unavailable(f"Could not subscribe to Redis at {_safe_url(url)}.")

    def _topic(self, topic: str) -> str:
        return f"{self._prefix}:ev:{topic}"

    def publish(self, topic: str, event: Mapping[str, JsonInput]) -> None:
        import redis

        try:
            self._client.publish(self._topic(topic), json.dumps(dict(event)))
        except redis.RedisError as exc:  # the database holds the truth; pollers catch up
            log.warning("could not publish %s to Redis: %s", topic, exc)

    def subscribe(self, topics: Iterable[str]) -> Subscription:
        return self._hub.add(topics)

    def _listen(self) -> None:
        import redis

        backoff = 0.2
        while not self._stop.is_set():
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.psubscribe(f"{self._prefix}:ev:*")
                self._ready.set()
                backoff = 0.2
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message and message.get("type") == "pmessage":
                        self._dispatch(message["channel"], message["data"])
            except redis.RedisError as exc:
                log.warning("Redis subscription lost (%s); retrying in %.1fs", exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                with contextlib.suppress(redis.RedisError):
                    pubsub.close()

    def _dispatch(self, channel: bytes, data: bytes) -> None:
        start = len(self._prefix) + 4
        try:
            event = strict_json.loads(data, what="A push event")
        except InvalidInput:  # not one of ours: nothing to deliver
            return
        if isinstance(event, dict):
            self._hub.deliver(channel.decode()[start:], event)

    def _presence_key(self, device_id: str) -> str:
        return f"{self._prefix}:presence:{device_id}"

    def set_present(self, device_id: str, connection_id: str, ttl_seconds: float) -> None:
        import redis

        key = self._presence_key(device_id)
        now = self._clock().timestamp()
        try:
            pipe = self._client.pipeline()
            pipe.zadd(key, {connection_id: now + ttl_seconds})
            pipe.zremrangebyscore(key, "-inf", now)
            pipe.expire(key, int(ttl_seconds) + 1)
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("could not record presence in Redis: %s", exc)

    def set_absent(self, device_id: str, connection_id: str) -> None:
        import redis

        with contextlib.suppress(redis.RedisError):
            self._client.zrem(self._presence_key(device_id), connection_id)

    def present(self, device_ids: Iterable[str]) -> set[str]:
        import redis

        ids = list(device_ids)
        if not ids:
            return set()
        try:
            pipe = self._client.pipeline()
            now = self._clock().timestamp()
            for device_id in ids:
                pipe.zcount(self._presence_key(device_id), now, "+inf")
            counts = pipe.execute()
        except redis.RedisError as exc:
            log.warning("could not read presence from Redis: %s", exc)
            return set()
        return {d for d, n in zip(ids, counts, strict=True) if n}

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=3)
        self._client.close()


def _safe_url(url: str) -> str:
    """The URL without a password, for messages."""
    head, sep, tail = url.rpartition("@")
    if not sep:
        return url
    scheme, _, _ = head.partition("://")
    return f"{scheme}://…@{tail}"


def open_channel(redis_url: str | None, prefix: str = "cardvault", *, clock: Clock) -> Channel:
    """Redis when configured, else this process alone; presence on ``clock``."""
    return RedisChannel(redis_url, prefix, clock=clock) if redis_url else LocalChannel(clock=clock)
