"""The prompt-bombing rules as a pure decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cardvault.domain.push_policy import (
    PastPrompt,
    PushLimits,
    PushRequest,
    PushStatus,
    new_number,
    next_allowed,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
LIMITS = PushLimits(max_pending=3)


def _prompt(ago: float, status: PushStatus, lifetime: float = 120) -> PastPrompt:
    created = NOW - timedelta(seconds=ago)
    answered = created + timedelta(seconds=1) if status.is_denial else None
    return PastPrompt(
        created_at=created,
        expires_at=created + timedelta(seconds=lifetime),
        status=status,
        answered_at=answered,
    )


def test_a_quiet_card_may_be_prompted() -> None:
    assert next_allowed([], now=NOW, limits=LIMITS) is None


def test_at_most_max_pending_live_prompts() -> None:
    live = [_prompt(10, PushStatus.PENDING) for _ in range(3)]
    assert next_allowed(live, now=NOW, limits=LIMITS) == live[0].expires_at
    stale = [_prompt(500, PushStatus.PENDING) for _ in range(3)]
    assert next_allowed(stale, now=NOW, limits=LIMITS) is None


def test_each_denial_doubles_the_wait_until_an_approval() -> None:
    one = [_prompt(5, PushStatus.DENIED)]
    assert next_allowed(one, now=NOW, limits=LIMITS) == one[0].answered_at + timedelta(seconds=30)
    three = [
        _prompt(5, PushStatus.NOT_ME),
        _prompt(50, PushStatus.WRONG_NUMBER),
        _prompt(90, PushStatus.DENIED),
    ]
    when = next_allowed(three, now=NOW, limits=LIMITS)
    assert when == three[0].answered_at + timedelta(seconds=120)
    approved_since = [_prompt(1, PushStatus.USED), *three]
    assert next_allowed(approved_since, now=NOW, limits=LIMITS) is None


def test_the_wait_is_capped_and_old_denials_are_forgotten() -> None:
    many = [_prompt(5 + i, PushStatus.DENIED) for i in range(20)]
    when = next_allowed(many, now=NOW, limits=LIMITS)
    assert when is not None
    assert when - NOW <= timedelta(minutes=15)
    old = [_prompt(2 * 3600, PushStatus.DENIED)]
    assert next_allowed(old, now=NOW, limits=LIMITS) is None


def test_numbers_have_two_digits() -> None:
    assert {new_number() for _ in range(2000)} <= set(range(10, 100))


def test_a_reset_push_asks_to_reset_the_passcode_not_to_sign_in() -> None:
    assert PushRequest.PASSCODE_RESET.heading == "Reset your passcode"
    assert PushRequest.SIGN_IN.heading == "Sign in"
