"""The rate limits' pure parts: rates as operators write them, windows, keys, words."""

from __future__ import annotations

import pytest

from cardvault.config import Settings
from cardvault.domain.rate_limit import (
    Bucket,
    Rate,
    Scope,
    address_key,
    humane_wait,
    identifier_key,
    retry_after,
)
from cardvault.errors import InvalidInput


@pytest.mark.parametrize(
    ("text", "requests", "seconds", "shown"),
    [
        ("30/1m", 30, 60, "30/1m"),
        ("10/15m", 10, 900, "10/15m"),
        ("100/1h", 100, 3600, "100/1h"),
        ("5/90s", 5, 90, "5/90s"),
        (" 7/120S ", 7, 120, "7/2m"),
    ],
)
def test_a_rate_is_written_requests_per_period(
    text: str, requests: int, seconds: int, shown: str
) -> None:
    rate = Rate.parse(text)
    assert rate == Rate(requests=requests, seconds=seconds)
    assert str(rate) == shown


def test_off_means_no_limit() -> None:
    assert Rate.parse("off") is None
    assert Rate.parse(" OFF ") is None


@pytest.mark.parametrize(
    "text", ["", "30", "30/", "/1m", "30/1d", "0/1m", "30/0s", "-1/1m", "x/1m"]
)
def test_anything_else_is_refused_with_an_example(text: str) -> None:
    with pytest.raises(InvalidInput, match="like 30/1m"):
        Rate.parse(text)


def test_a_request_within_the_rate_passes_and_the_next_waits_for_the_window() -> None:
    rate = Rate(requests=3, seconds=60)
    assert retry_after(3, 59.2, rate) is None
    assert retry_after(4, 59.2, rate) == 60
    assert retry_after(9, 0.1, rate) == 1  # never "retry after 0"


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        (None, "unknown"),
        ("testclient", "unknown"),
    ],
)
def test_an_ipv6_host_counts_as_its_64_and_mapped_ipv4_as_ipv4(
    address: str | None, key: str
) -> None:
    assert address_key(address) == key


def test_an_identifier_counts_the_same_however_it_is_typed() -> None:
    base = identifier_key("email", "Alice@Example.org")
    assert identifier_key("email", "  alice@example.ORG ") == base
    full_width = "\uff41\uff4c\uff49\uff43\uff45"  # "alice" in full-width letters (NFKC)
    assert identifier_key("EMAIL", f"{full_width}@example.org") == base
    assert identifier_key("ad_account", "alice@example.org") != base
    assert identifier_key("email", "bob@example.org") != base
    assert "alice" not in base
    assert len(base) == 32


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (1, "1 second"),
        (45, "45 seconds"),
        (60, "1 minute"),
        (61, "2 minutes"),
        (900, "15 minutes"),
        (3600, "1 hour"),
        (7200, "2 hours"),
    ],
)
def test_the_wait_is_said_in_words(seconds: int, words: str) -> None:
    assert humane_wait(seconds) == words


def test_every_bucket_has_an_address_rate_and_identifier_rates_where_documented() -> None:
    settings = Settings(insecure_test_kdf=True)
    for bucket in Bucket:
        assert settings.rate_limit(bucket, Scope.ADDRESS) is not None, bucket
    with_identifier = {b for b in Bucket if settings.rate_limit(b, Scope.IDENTIFIER)}
    assert with_identifier == {Bucket.SIGNIN, Bucket.RESET, Bucket.PAIRING}
    off = Settings(insecure_test_kdf=True, rate_limits_enabled=False)
    assert all(off.rate_limit(b, s) is None for b in Bucket for s in Scope)
