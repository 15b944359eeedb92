"""The machine's Redis (127.0.0.1:6379) for tests that use a real one."""

from __future__ import annotations

import os
import secrets

import pytest
import redis

REDIS_URL = "redis://127.0.0.1:6379/0"
#: nothing listens here: a Redis that is down
DEAD_REDIS_URL = "redis://127.0.0.1:1/0"


def redis_or_skip() -> None:
    """Skip without Redis, or fail where it is required (CI)."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError:
        if os.environ.get("CI") or os.environ.get("CARDVAULT_TEST_REQUIRE_POSTGRES"):
            pytest.fail(f"Redis is required but {REDIS_URL} does not answer")
        pytest.skip("Redis is not reachable")


def fresh_prefix() -> str:
    """A key prefix of this test's own, so tests sharing the Redis never meet."""
    return f"cvtest-{secrets.token_hex(4)}"
