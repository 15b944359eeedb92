"""The dispatcher's back-off: doubling from the base, at most an hour, 0 to 10 % jitter."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cardvault.services.notifications.dispatcher import MAX_DELAY_SECONDS, retry_delay


@pytest.mark.parametrize(
    ("attempts", "base"),
    [(0, 30.0), (1, 30.0), (2, 30.0), (3, 30.0), (6, 30.0), (1, 0.5)],
)
def test_the_delay_doubles_per_attempt_with_at_most_ten_percent_jitter(
    attempts: int, base: float
) -> None:
    expected = base * 2 ** max(attempts - 1, 0)
    for _ in range(50):
        delay = retry_delay(attempts, base).total_seconds()
        assert expected <= delay <= expected * 1.1


def test_the_delay_is_capped_at_an_hour_however_many_attempts() -> None:
    for attempts in (13, 40, 1000):
        delay = retry_delay(attempts, 30.0)
        assert timedelta(seconds=MAX_DELAY_SECONDS) <= delay <= timedelta(seconds=3960)


def test_the_jitter_spreads_retries() -> None:
    assert len({retry_delay(3, 30.0) for _ in range(40)}) > 5
