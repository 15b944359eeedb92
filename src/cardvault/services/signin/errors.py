"""What signing in raises: lockouts, refusals, second factors, sessions and the KDF gate."""

from __future__ import annotations

from dataclasses import field

from cardvault.errors import (
    AuthenticationFailed,
    Conflict,
    PermissionDenied,
    Unavailable,
    error,
)
from cardvault.json_types import JsonObject

#: the one answer to every refusal before the passcode, and to a wrong passcode: it must
#: not tell them apart, yet still help a holder whose card someone else locked
GENERIC_FAILURE = (
    "Passcode or identifier not recognised. If your card has been locked, you will have "
    "received an email saying so, with a link to unlock it; otherwise check both and try again."
)


class NoSecondFactor(AuthenticationFailed):
    """The card has no second factor its organisation's policy accepts."""

    code = "no_second_factor"


class TransactionInvalid(AuthenticationFailed):
    """The sign-in transaction is unknown, expired, already used or not this client's."""

    code = "transaction_invalid"


@error
class SecondFactorLocked(AuthenticationFailed):
    """No second-factor answer can be checked for this card now; nothing was checked."""

    code = "second_factor_locked"
    message: str = field(
        default="This card cannot take a second factor now: it is locked, or too many "
        "answers are being checked at once.",
        init=False,
    )
    remedy: str | None = field(
        default="If your card was locked, we have emailed you a link to unlock it. "
        "Otherwise wait a moment and try again.",
        init=False,
    )


class FactorFailed(AuthenticationFailed):
    """A second factor did not check out; ``reason`` goes to the audit log.

    ``counts``: whether this was a wrong answer, which counts toward the card's
    second-factor lock (DESIGN §3.3 revised): a code, a number, a key's assertion, a tap
    that was checked and did not match. An answer that was missing or malformed, a replayed
    code, or a push refused on the phone (the phone's wrong number was counted when the
    phone answered) does not. ``code`` narrows the problem code (``totp_replayed``)."""

    code = "second_factor_failed"

    def __init__(
        self, message: str, *, reason: str, code: str | None = None, counts: bool = True
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.counts = counts
        if code:
            self.code = code  # type: ignore[misc]

    def extensions(self) -> JsonObject:
        """The reason, as the audit log has it."""
        return {"reason": self.reason}


class HrCardsNotAllowed(PermissionDenied):
    """The organisation's policy does not allow signing in with an HR card."""

    code = "hr_cards_not_allowed"


@error
class Busy(Unavailable):
    """Too many passcodes are being checked at once (the KDF gate is full): try again."""

    code = "busy"
    message: str = field(default="cardvault is busy; try again in a moment.", init=False)
    retry_after: int


@error
class CardLocked(Conflict):
    """The card is locked (or cannot take a passcode now); no KDF was run.

    ``reason`` says why, for the audit log's look-alike refusal."""

    code = "card_locked"
    reason: str


@error
class WrongPasscode(AuthenticationFailed):
    """The passcode did not open the card; ``attempts_left`` before it locks."""

    code = "wrong_passcode"
    message: str = field(default="", init=False)
    attempts_left: int

    def __post_init__(self) -> None:
        word = "attempt" if self.attempts_left == 1 else "attempts"
        self.message = (
            f"The passcode is not right. {self.attempts_left} {word} left before the card locks."
            if self.attempts_left
            else "The passcode is not right. The card is now locked."
        )
        super().__post_init__()


@error
class SignInFailed(AuthenticationFailed):
    """Unknown identifier, wrong passcode, locked or unusable card: all look the same."""

    code = "sign_in_failed"
    message: str = field(default=GENERIC_FAILURE, init=False)


@error
class SessionInvalid(AuthenticationFailed):
    """The card session has ended, expired or never was."""

    code = "session_invalid"

    message: str = field(default="The session has ended; sign in again.", kw_only=False)
