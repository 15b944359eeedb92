"""The words the pages use for a session's limits (footer, warning, no-JavaScript note)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cardvault.services.signin.session_limits import SessionLimits
from cardvault.web.ui.timeout import minutes_in_words


@pytest.mark.parametrize(
    ("minutes", "words"),
    [
        (1, "1 minute"),
        (15, "15 minutes"),
        (60, "1 hour"),
        (90, "1 hour and 30 minutes"),
        (121, "2 hours and 1 minute"),
        (720, "12 hours"),
    ],
)
def test_minutes_read_as_people_say_them(minutes: int, words: str) -> None:
    assert minutes_in_words(minutes) == words


def test_the_time_left_never_goes_below_zero() -> None:
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    limits = SessionLimits(
        signed_in=True,
        idle_minutes=15,
        absolute_minutes=720,
        idle_ends_at=now + timedelta(seconds=90),
        ends_at=now + timedelta(hours=3),
    )
    assert limits.seconds_left(now) == (90, 3 * 3600)
    assert limits.seconds_left(now + timedelta(hours=4)) == (0, 0)
