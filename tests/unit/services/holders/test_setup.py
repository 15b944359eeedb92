"""An invitation's second-factor step is open for this browser only for a while."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cardvault.services.holders.setup import setup_open

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def test_the_window_is_open_until_its_time() -> None:
    assert setup_open((NOW + timedelta(minutes=1)).isoformat(), NOW)
    assert not setup_open(NOW.isoformat(), NOW)


def test_no_window_or_a_garbled_one_is_closed() -> None:
    assert not setup_open(None, NOW)
    assert not setup_open("", NOW)
    assert not setup_open("tomorrow", NOW)
