"""The push channel: events reach subscribers in their event loop, in-process and through
a real Redis; presence expires by itself, on the runtime's clock."""

from __future__ import annotations

import asyncio
import secrets
import threading
from datetime import UTC, datetime, timedelta

import pytest
from tests.support.redis_server import REDIS_URL, redis_or_skip

from cardvault.errors import Unavailable
from cardvault.notify.channel import Channel, LocalChannel, RedisChannel
from cardvault.services.devices import channel as devices
from cardvault.services.system.runtime import Runtime, skewed
from cardvault.store.types import utcnow


class HandClock:
    """A runtime clock a test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> HandClock:
    return HandClock()


@pytest.fixture(params=["local", "redis"])
def pair_of_channels(request: pytest.FixtureRequest, clock: HandClock):  # type: ignore[no-untyped-def]
    """(publisher, subscriber): the same channel in-process; two instances through Redis."""
    if request.param == "local":
        local = LocalChannel(clock=clock)
        yield local, local
        return
    redis_or_skip()
    prefix = f"cvtest-{secrets.token_hex(4)}"
    a, b = (
        RedisChannel(REDIS_URL, prefix, clock=clock),
        RedisChannel(REDIS_URL, prefix, clock=clock),
    )
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


def test_presence_is_per_connection_and_expires_on_the_runtime_clock(  # type: ignore[no-untyped-def]
    pair_of_channels, clock: HandClock
) -> None:
    publisher, subscriber = pair_of_channels
    ch: Channel = publisher
    ch.set_present("d1", "c1", 30)
    ch.set_present("d1", "c2", 30)
    ch.set_absent("d1", "c1")
    ch.set_present("d2", "c3", 10)
    assert subscriber.present(["d1", "d2", "d3"]) == {"d1", "d2"}
    clock.now += timedelta(seconds=11)  # no time passes on the machine's clock
    assert subscriber.present(["d1", "d2"]) == {"d1"}
    ch.set_absent("d1", "c2")
    assert subscriber.present(["d1", "d2"]) == set()


def test_a_runtime_clock_ahead_of_the_machine_s_ages_presence_by_its_own_time(
    rt: Runtime,
) -> None:
    ttl = timedelta(seconds=devices.PRESENCE_TTL_SECONDS)
    devices.channel(rt).set_present("phone", "conn", ttl.total_seconds())
    assert devices.connected(rt, ["phone"]) == {"phone"}
    rt.clock = skewed(utcnow, int(ttl.total_seconds()) + 1)  # CLOCK_OFFSET_SECONDS
    assert devices.connected(rt, ["phone"]) == set()


def test_an_unreachable_redis_is_named_in_the_error() -> None:
    with pytest.raises(Unavailable, match=r"127\.0\.0\.1:1/"):
        RedisChannel("redis://127.0.0.1:1/0", clock=utcnow)
