"""The in-process rate-limit windows: fixed windows per key, closed on time, bounded in size."""

from __future__ import annotations

import threading

from cardvault.services.rate_limits.counters import LocalCounters


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_hits_count_up_within_a_window_and_say_when_it_closes() -> None:
    clock = Clock()
    counters = LocalCounters(clock=clock)
    assert counters.hit("login:10.0.0.1", 60) == (1, 60.0)
    clock.now += 15
    assert counters.hit("login:10.0.0.1", 60) == (2, 45.0)
    assert counters.hit("login:10.0.0.2", 60) == (1, 60.0)


def test_a_window_is_fixed_and_a_new_one_starts_when_it_has_closed() -> None:
    clock = Clock()
    counters = LocalCounters(clock=clock)
    for _ in range(5):
        counters.hit("k", 60)
    clock.now += 59.9
    assert counters.hit("k", 60)[0] == 6  # still the first window: fixed, not sliding
    clock.now += 0.1
    count, left = counters.hit("k", 60)
    assert (count, left) == (1, 60.0)


def test_the_oldest_windows_go_when_there_are_too_many_keys() -> None:
    clock = Clock()
    counters = LocalCounters(max_keys=3, clock=clock)
    for key in ("a", "b", "c", "d"):
        counters.hit(key, 60)
        clock.now += 1
    assert counters.hit("a", 60)[0] == 1  # "a" was dropped to keep three keys
    assert counters.hit("d", 60)[0] == 2


def test_closed_windows_are_dropped_on_the_next_new_key() -> None:
    clock = Clock()
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
