"""The push channel: events reach subscribers in their event loop, in-process and through
a real Redis; presence expires by itself."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time

import pytest
from tests.support.redis_server import REDIS_URL, redis_or_skip

from cardvault.errors import Unavailable
from cardvault.notify.channel import Channel, LocalChannel, RedisChannel


@pytest.fixture(params=["local", "redis"])
def pair_of_channels(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """(publisher, subscriber): the same channel in-process; two instances through Redis."""
    if request.param == "local":
        local = LocalChannel()
        yield local, local
        return
    redis_or_skip()
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

    assert _run_in_own_thread(scenario()) == {"status": "approved"}


def _run_in_own_thread(coro):  # type: ignore[no-untyped-def]
    """asyncio.run on a fresh thread: a worker that already drove Playwright's sync API has
    an event loop marked running on its main thread."""
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(asyncio.run(coro)))
    thread.start()
    thread.join(timeout=30)
    return result[0] if result else None


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
