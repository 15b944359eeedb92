"""Readiness as a verdict over its checks (pure)."""

from __future__ import annotations

from cardvault.services.system.health import Check, Readiness, _describe


def test_ready_only_when_every_check_that_counts_passes() -> None:
    ok = Check(name="database", ok=True)
    redis_down = Check(name="redis", ok=False, problem="Connection refused")
    assert Readiness(checks=(ok,)).ready
    assert not Readiness(checks=(ok, redis_down)).ready
    tolerant = Readiness(checks=(ok, redis_down), tolerated=frozenset({"redis"}))
    assert tolerant.ready
    assert tolerant.failing == ("redis",)


def test_a_problem_is_one_line_without_urls() -> None:
    error = ValueError("could not connect to postgresql://app:s3cret@db/x\nsecond line")
    assert _describe(error) == "could not connect to"
