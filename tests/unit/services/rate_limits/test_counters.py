"""The in-process rate-limit windows, the parts tests/integration/rate_limits does not cover:
a fixed (not sliding) window, closed windows dropped, and exact counts under threads."""

from __future__ import annotations

import threading

from tests.support.clock import FakeClock

from cardvault.services.rate_limits.counters import LocalCounters


def test_a_window_is_fixed_from_its_first_hit_not_sliding() -> None:
    clock = FakeClock()
    counters = LocalCounters(clock=clock)
    for _ in range(5):
        clock.now += 10
        counters.hit("k", 60)
    assert counters.hit("k", 60) == (6, 20.0)  # still the window opened 40 s ago
    clock.now += 19.9
    assert counters.hit("k", 60)[0] == 7
    clock.now += 0.1
    assert counters.hit("k", 60) == (1, 60.0)


def test_closed_windows_are_dropped_when_a_new_key_arrives() -> None:
    clock = FakeClock()
    counters = LocalCounters(clock=clock)
    counters.hit("short", 1)
    counters.hit("long", 600)
    clock.now += 2
    counters.hit("new", 60)
    assert list(counters._windows) == ["long", "new"]


def test_concurrent_hits_are_each_counted_once() -> None:
    counters = LocalCounters()
    seen: list[int] = []
    lock = threading.Lock()

    def hit() -> None:
        for _ in range(200):
            count, _left = counters.hit("shared", 60)
            with lock:
                seen.append(count)

    threads = [threading.Thread(target=hit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == list(range(1, 1601))
