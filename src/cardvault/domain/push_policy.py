"""When a card may get another push prompt (DESIGN §3.3: no prompt bombing), as a pure decision.

Someone who knows a holder's passcode could send prompt after prompt until a tired holder
taps "approve". So a card has at most ``max_pending`` live prompts, and every denial
("deny", "this wasn't me", a wrong number) since the last approval doubles the wait before
the next prompt: 30 s, 1 min, 2 min, … up to 15 min. Denials older than ``window`` are
forgotten. The holder is never locked out: the one-time code from the app still works.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class PushStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    USED = "used"  # approved, and the sign-in it approved has completed
    DENIED = "denied"
    NOT_ME = "not_me"
    WRONG_NUMBER = "wrong_number"
    EXPIRED = "expired"
    CANCELLED = "cancelled"  # the sign-in finished another way

    @property
    def is_denial(self) -> bool:
        return self in (PushStatus.DENIED, PushStatus.NOT_ME, PushStatus.WRONG_NUMBER)

    @property
    def is_final(self) -> bool:
        return self is not PushStatus.PENDING


class PushRequest(StrEnum):
    """What a push asks the holder to approve; the phone shows its ``heading`` (issue 21)."""

    SIGN_IN = "sign_in"
    PASSCODE_RESET = "passcode_reset"

    @property
    def heading(self) -> str:
        return "Reset your passcode" if self is PushRequest.PASSCODE_RESET else "Sign in"


class Decision(StrEnum):
    APPROVE = "approve"
    DENY = "deny"
    NOT_ME = "not_me"


@dataclass(frozen=True, kw_only=True)
class PushLimits:
    max_pending: int = 3
    backoff_base: timedelta = timedelta(seconds=30)
    backoff_max: timedelta = timedelta(minutes=15)
    window: timedelta = timedelta(hours=1)


@dataclass(frozen=True, kw_only=True)
class PastPrompt:
    created_at: datetime
    expires_at: datetime
    status: PushStatus
    answered_at: datetime | None = None


def next_allowed(
    history: Sequence[PastPrompt], *, now: datetime, limits: PushLimits
) -> datetime | None:
    """None when a new prompt may go out now, else the earliest time it may."""
    live = [p for p in history if p.status is PushStatus.PENDING and p.expires_at > now]
    if len(live) >= limits.max_pending:
        return min(p.expires_at for p in live)
    denials = recent_denials(history, now=now, window=limits.window)
    if not denials:
        return None
    wait = min(limits.backoff_base * (2 ** (len(denials) - 1)), limits.backoff_max)
    last = max(p.answered_at or p.created_at for p in denials)
    return last + wait if last + wait > now else None


def recent_denials(
    history: Sequence[PastPrompt], *, now: datetime, window: timedelta
) -> list[PastPrompt]:
    """Denials within ``window`` that came after the last approval."""
    ordered = sorted(history, key=lambda p: p.created_at, reverse=True)
    out: list[PastPrompt] = []
    for prompt in ordered:
        if prompt.created_at < now - window:
            break
        if prompt.status in (PushStatus.APPROVED, PushStatus.USED):
            break
        if prompt.status.is_denial:
            out.append(prompt)
    return out


def new_number() -> int:
    """The two-digit number the PC shows and the holder types on the phone (10 to 99)."""
    return 10 + secrets.randbelow(90)
