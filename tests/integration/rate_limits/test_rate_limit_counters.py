"""The rate limits' counters: fixed windows in this process and in a real Redis (atomic
across threads and instances), and counting locally while Redis is down."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from tests.support.clock import FakeClock
from tests.support.redis_server import DEAD_REDIS_URL, REDIS_URL, fresh_prefix, redis_or_skip

from cardvault.services.rate_limits.counters import (
    REDIS_RETRY_SECONDS,
    FallbackCounters,
    LocalCounters,
    RedisCounters,
    open_counters,
)


def test_a_local_window_opens_with_the_first_hit_and_closes_after_its_period() -> None:
    clock = FakeClock()
    counters = LocalCounters(clock=clock)
    assert counters.hit("k", 60) == (1, 60)
    clock.now += 45
    assert counters.hit("k", 60) == (2, 15)
    assert counters.hit("other", 60) == (1, 60)
    clock.now += 15
    assert counters.hit("k", 60) == (1, 60)  # a new window


def test_local_counters_keep_a_bounded_number_of_keys() -> None:
    clock = FakeClock()
    counters = LocalCounters(max_keys=3, clock=clock)
    for key in "abcd":
        counters.hit(key, 60)
    assert counters.hit("a", 60)[0] == 1  # the oldest window went to make room
    assert counters.hit("d", 60)[0] == 2


@pytest.fixture
def prefix() -> str:
    redis_or_skip()
    return fresh_prefix()


def test_a_redis_window_counts_and_expires_like_the_local_one(prefix: str) -> None:
    counters = RedisCounters(REDIS_URL, prefix)
    count, left = counters.hit("k", 60)
    assert count == 1
    assert 59 < left <= 60
    assert counters.hit("k", 60)[0] == 2
    count, left = counters.hit("short", 1)
    assert count == 1
    assert left <= 1


def test_concurrent_hits_from_two_instances_count_exactly_once_each(prefix: str) -> None:
    instances = (RedisCounters(REDIS_URL, prefix), RedisCounters(REDIS_URL, prefix))
    with ThreadPoolExecutor(max_workers=16) as pool:
        counts = sorted(pool.map(lambda n: instances[n % 2].hit("shared", 60)[0], range(64)))
    assert counts == list(range(1, 65))


class SwitchableRedis:
    """A fake primary whose Redis can be switched off and on (the real one behind it)."""

    def __init__(self, real: RedisCounters) -> None:
        self.real = real
        self.down = True
        self.asked = 0

    def hit(self, key: str, window_seconds: int) -> tuple[int, float]:
        self.asked += 1
        if self.down:
            raise redis.ConnectionError("connection refused")
        return self.real.hit(key, window_seconds)

    def close(self) -> None:
        self.real.close()


def test_with_redis_down_counts_go_on_locally_and_redis_is_asked_again_later(
    prefix: str,
) -> None:
    clock = FakeClock()
    primary = SwitchableRedis(RedisCounters(REDIS_URL, prefix))
    counters = FallbackCounters(primary, LocalCounters(clock=clock), clock)
    assert [counters.hit("k", 60)[0] for _ in range(3)] == [1, 2, 3]
    assert primary.asked == 1  # not asked again on every request
    primary.down = False
    assert counters.hit("k", 60)[0] == 4  # still local until the pause is over
    clock.now += REDIS_RETRY_SECONDS
    assert counters.hit("k", 60)[0] == 1  # Redis again, with its own window
    assert primary.asked == 2


def test_a_real_redis_that_is_down_raises_what_the_fallback_catches() -> None:
    with pytest.raises(redis.RedisError):
        RedisCounters(DEAD_REDIS_URL, fresh_prefix()).hit("k", 60)
    counters = open_counters(DEAD_REDIS_URL, fresh_prefix())
    assert [counters.hit("k", 60)[0] for _ in range(2)] == [1, 2]


def test_a_redis_url_redis_cannot_read_falls_back_to_local_counters() -> None:
    assert isinstance(open_counters("mysql://nowhere", "p"), LocalCounters)
    assert isinstance(open_counters(None, "p"), LocalCounters)
    assert isinstance(open_counters(REDIS_URL, "p"), FallbackCounters)
