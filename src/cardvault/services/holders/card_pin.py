"""The holder's card PIN on "My card" (DESIGN §3.8 revised; issues 18 and 19).

The PIN is managed by the same service as ``cardvault-agent pin`` (``services/piv/card_pin``),
over the portal's holder card session: set it when the card has none, change it with the
current PIN (a wrong one counts down the card's retry counter), and after a block set a new
one without the old -- the portal's sign-in (passcode and second factor) opened a session
after the block, which is what an unblock needs. The organisation's shortest card PIN
applies. Each change is audited by the PIV service and confirmed by email in its transaction.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from sqlalchemy.orm import Session

from cardvault.errors import InvalidInput
from cardvault.services.notifications import outbox as notifications
from cardvault.services.piv import card_pin as card_pins
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import Card

#: what the confirmation email says happened, by outcome
_CHANGES = {
    "set": "a card PIN for smartcard software was set for your card",
    "changed": "the card PIN of your card was changed",
    "unblocked": "a new card PIN was set for your card after it was blocked",
}


@dataclass(frozen=True, kw_only=True)
class CardPinPage:
    """What the card PIN page needs to know."""

    pin_set: bool
    blocked: bool
    attempts_left: int
    #: blocked, and this sign-in came after the block: a new PIN needs no old one
    may_unblock: bool
    #: the organisation's shortest card PIN
    minimum: int


def page(rt: Runtime, actor: Actor, session_id: str) -> CardPinPage:
    """What the card PIN page shows for the signed-in holder; raises SessionInvalid."""
    found = card_pins.status_by_id(rt, actor, session_id)
    return CardPinPage(
        pin_set=found.pin_set,
        blocked=found.blocked,
        attempts_left=found.attempts_left,
        may_unblock=found.may_unblock,
        minimum=found.minimum,
    )


def set_card_pin(
    rt: Runtime, actor: Actor, session_id: str, *, current: str, pin: str, confirm: str
) -> str:
    """Set, change or (after a block) replace the card PIN; returns the outcome
    (``set``, ``changed`` or ``unblocked``)."""
    if not hmac.compare_digest(pin.encode(), confirm.encode()):
        raise InvalidInput("The two card PINs differ.", field="confirm")
    found = card_pins.status_by_id(rt, actor, session_id)
    if found.pin_set and not found.blocked and not current:
        # refused before the PIV service, where a missing PIN would cost one of the tries
        raise InvalidInput("Enter your current card PIN.", field="current")

    def also(session: Session, card: Card, outcome: str) -> None:
        notifications.card_changed(session, rt, card, _CHANGES[outcome])

    done = card_pins.set_pin_by_id(
        rt, actor, session_id, new_pin=pin, current_pin=current or None, also=also
    )
    return done.outcome
