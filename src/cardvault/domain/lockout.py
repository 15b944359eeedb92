"""The lockout rules (DESIGN §3.3) as pure decisions; the store applies them atomically."""

from __future__ import annotations

from dataclasses import dataclass

from cardvault.domain.vocabulary import CardStatus

MAX_ATTEMPTS = 3
#: statuses in which a passcode may be tried at all
OPENABLE = (CardStatus.ISSUED, CardStatus.ENROLLED, CardStatus.ACTIVE)
#: the lock reason of a card locked by wrong passcodes: its holder may unlock it themselves,
#: unlike a card an RA locked
ATTEMPTS_LOCK_REASON = "three incorrect passcodes"
#: consecutive wrong second-factor answers a card takes, across all its transactions
MAX_SECOND_FACTOR_FAILURES = 5
#: the lock reason of a card locked by wrong second factors (DESIGN §3.3 revised)
SECOND_FACTOR_LOCK_REASON = "second_factor"
#: what the holder reads as the card's status reason (the RA sees it too)
SECOND_FACTOR_STATUS_REASON = "five incorrect second factors"
#: locks whose holder may lift them with the emailed link (not an RA's own lock)
SELF_UNLOCKABLE_REASONS = (ATTEMPTS_LOCK_REASON, SECOND_FACTOR_LOCK_REASON)


@dataclass(frozen=True, kw_only=True)
class AttemptOutcome:
    """What a wrong passcode leads to, given the reserved attempt number."""

    attempts_left: int
    lock: bool


def after_wrong(reserved_count: int, *, max_attempts: int = MAX_ATTEMPTS) -> AttemptOutcome:
    left = max(max_attempts - reserved_count, 0)
    return AttemptOutcome(attempts_left=left, lock=left == 0)
