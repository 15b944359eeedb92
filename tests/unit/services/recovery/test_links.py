"""Single-use links, the pure parts: tokens, and why a link no longer works (in the order a
holder should hear it: used, replaced, expired, worn out)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cardvault.services.recovery.errors import LinkInvalid, LinkWornOut
from cardvault.services.recovery.links import (
    TOKEN_BYTES,
    TOKEN_LENGTH,
    Purpose,
    check_live,
    new_token,
    token_bytes,
    token_hash,
    worn_out,
)
from cardvault.store.models import Link

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def _link(**changes: object) -> Link:
    values: dict[str, object] = {
        "purpose": Purpose.RESET.value,
        "expires_at": NOW + timedelta(minutes=30),
        "consumed_at": None,
        "revoked_at": None,
        "failed_attempts": 0,
    }
    return Link(**{**values, **changes})


def test_a_token_is_256_random_bits_in_url_safe_text_and_only_its_hash_is_kept() -> None:
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    for token in tokens:
        assert len(token) == TOKEN_LENGTH
        assert len(token_bytes(token)) == TOKEN_BYTES
        assert len(token_hash(token)) == 64
        assert token not in token_hash(token)
    assert token_hash("a") != token_hash("b")


def test_a_live_link_passes() -> None:
    check_live(_link(failed_attempts=2), NOW, max_failures=3)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"consumed_at": NOW, "revoked_at": NOW, "expires_at": NOW}, "used"),
        ({"revoked_at": NOW, "expires_at": NOW, "failed_attempts": 3}, "revoked"),
        ({"expires_at": NOW, "failed_attempts": 3}, "expired"),
        ({"expires_at": NOW - timedelta(seconds=1)}, "expired"),
        ({"failed_attempts": 3}, "too_many_failures"),
    ],
)
def test_a_dead_link_says_the_first_reason_that_applies(
    changes: dict[str, object], reason: str
) -> None:
    with pytest.raises(LinkInvalid) as refused:
        check_live(_link(**changes), NOW, max_failures=3)
    assert refused.value.reason == reason
    assert refused.value.remedy


def test_a_worn_out_link_is_its_own_kind_of_refusal() -> None:
    with pytest.raises(LinkWornOut):
        check_live(_link(failed_attempts=5), NOW, max_failures=5)
    for purpose in Purpose:
        error = worn_out(purpose)
        assert error.code == "link_worn_out"
        assert "too many answers" in error.message
