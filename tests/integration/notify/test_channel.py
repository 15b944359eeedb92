"""The push channel: events reach subscribers in their event loop, in-process and through
a real Redis; presence expires by itself."""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
import time

import pytest
import redis

from cardvault.errors import Unavailable
from cardvault.notify.channel import Channel, LocalChannel, RedisChannel

REDIS_URL = "redis://127.0.0.1:6379/0"


def _redis_or_skip() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError:
        if os.environ.get("CI") or os.environ.get("CARDVAULT_TEST_REQUIRE_POSTGRES"):
            pytest.fail(f"Redis is required but {REDIS_URL} does not answer")
        pytest.skip("Redis is not reachable")


@pytest.fixture(params=["local", "redis"])
def pair_of_channels(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """(publisher, subscriber): the same channel in-process; two instances through Redis."""
    if request.param == "local":
        local = LocalChannel()
        yield local, local
        return
    _redis_or_skip()
    prefix = f"cvtest-{secrets.token_hex(4)}"
    a, b = RedisChannel(REDIS_URL, prefix), RedisChannel(REDIS_URL, prefix)
    yield a, b
    a.close()
    b.close()


def test_an_event_published_from_a_thread_reaches_the_subscriber(pair_of_channels) -> None:  # type: ignore[no-untyped-def]
    publisher, subscriber = pair_of_channels

    async def scenario() -> dict[str, object] | None:
        sub = subscriber.subscribe(["challenge:1"])
        other = subscriber.subscribe(["challenge:2"])
        try:
            threading.Thread(
                target=publisher.publish, args=("challenge:1", {"status": "approved"})
            ).start()
            got = await sub.get(timeout=5)
            assert await other.get(timeout=0.2) is None
            return got
        finally:
            sub.close()
            other.close()

    assert asyncio.run(scenario()) == {"status": "approved"}


def test_presence_is_per_connection_and_expires(pair_of_channels) -> None:  # type: ignore[no-untyped-def]
    publisher, subscriber = pair_of_channels
    ch: Channel = publisher
    ch.set_present("d1", "c1", 30)
    ch.set_present("d1", "c2", 30)
    ch.set_absent("d1", "c1")
    assert subscriber.present(["d1", "d2"]) == {"d1"}
    ch.set_absent("d1", "c2")
    ch.set_present("d2", "c3", 0.01)
    time.sleep(0.05)
    assert subscriber.present(["d1", "d2"]) == set()


def test_an_unreachable_redis_is_named_in_the_error() -> None:
    with pytest.raises(Unavailable, match=r"127\.0\.0\.1:1/"):
        RedisChannel("redis://127.0.0.1:1/0")
