"""What self-service recovery raises: links, answers and the reset's steps."""

from __future__ import annotations

from dataclasses import field

from cardvault.errors import (
    AuthenticationFailed,
    Conflict,
    NotFound,
    error,
)


@error
class WrongAnswers(AuthenticationFailed):
    """The security answers did not open the card; ``tries_left`` with this link."""

    code = "wrong_answers"
    message: str = field(default="", init=False)
    remedy: str | None = field(
        default="Answers are not case-sensitive; check the spelling.", init=False
    )
    tries_left: int

    def __post_init__(self) -> None:
        word = "try" if self.tries_left == 1 else "tries"
        self.message = (
            "Those answers do not match the ones you gave when you set up your card. "
            f"{self.tries_left} {word} left with this link."
        )
        super().__post_init__()


class RecoveryBlocked(Conflict):
    """Too many wrong tries on this card: only the RA can help now."""

    code = "recovery_blocked"


@error
class LinkInvalid(NotFound):
    """The link is unknown, used, replaced, expired or worn out; ``reason`` says which."""

    code = "link_invalid"
    reason: str


class LinkWornOut(LinkInvalid):
    """Too many wrong answers on this link: it no longer works."""

    code = "link_worn_out"


class LinkUsed(Conflict):
    """Somebody (perhaps another tab) completed this link first."""

    code = "link_used"


class RecoveryNotAllowed(Conflict):
    """The organisation's policy, or the card's state, does not allow a self-service reset."""

    code = "recovery_not_allowed"


@error
class RecoveryStepInvalid(AuthenticationFailed):
    """The step's transaction is unknown, expired, not this browser's, or out of order."""

    code = "recovery_step_invalid"
    message: str = field(
        default="This reset has timed out or was started in another window.", init=False
    )
    remedy: str | None = field(
        default="Open the link from the email again and start from the questions.", init=False
    )
