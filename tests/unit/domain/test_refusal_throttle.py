"""How often refused callers reach the audit chain: one event per source per minute, a budget
for all sources together, and nothing held back goes unreported."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cardvault.domain.refusal_throttle import RefusalThrottle, Verdict, source_of

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_one_event_per_source_per_minute_then_the_count_held_back() -> None:
    throttle = RefusalThrottle()
    assert throttle.admit("192.0.2.1", at(0)) == Verdict(write=True)
    for n in range(1, 50):
        assert throttle.admit("192.0.2.1", at(n)) == Verdict(write=False)
    assert throttle.admit("192.0.2.2", at(50)) == Verdict(write=True)
    assert throttle.admit("192.0.2.1", at(60)) == Verdict(write=True, suppressed=49)
    assert throttle.admit("192.0.2.1", at(61)) == Verdict(write=False)


def test_a_budget_bounds_events_from_many_sources_and_reports_the_rest() -> None:
    throttle = RefusalThrottle(budget=3)
    written = [throttle.admit(f"192.0.2.{n}", at(n / 10)).write for n in range(10)]
    assert written == [True] * 3 + [False] * 7
    assert throttle.admit("198.51.100.1", at(61)) == Verdict(write=True, suppressed_elsewhere=7)


def test_the_table_of_sources_is_bounded_and_forgets_without_losing_counts() -> None:
    throttle = RefusalThrottle(budget=1000, max_sources=2)
    assert throttle.admit("a", at(0)).write
    assert not throttle.admit("a", at(1)).write  # a holds back one
    assert throttle.admit("b", at(2)).write
    assert throttle.admit("c", at(3)) == Verdict(write=False)  # table full, all recent
    # a minute on, a and b are forgotten; a's held-back refusal is reported with c's event
    assert throttle.admit("c", at(70)) == Verdict(write=True, suppressed_elsewhere=2)


def test_a_clock_that_goes_back_does_not_silence_a_source_for_ever() -> None:
    throttle = RefusalThrottle()
    assert throttle.admit("a", at(100)).write
    assert throttle.admit("a", at(0)).write  # earlier than its last event: a new window


def test_ipv6_sources_are_their_slash_64() -> None:
    assert source_of("2001:db8:1:2:aaaa::1") == source_of("2001:db8:1:2:bbbb::2")
    assert source_of("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert source_of("2001:db8:1:3::1") != source_of("2001:db8:1:2::1")
    assert source_of("::ffff:192.0.2.1") == "192.0.2.1"
    assert source_of(None) == source_of("garbage") == "unknown"
