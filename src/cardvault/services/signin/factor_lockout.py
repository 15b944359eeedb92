"""Atomic second-factor attempts (DESIGN §3.3, revised).

A per-transaction limit is not enough: whoever knows the passcode simply starts another
transaction. So each card counts its consecutive wrong second-factor answers across every
transaction and every door (the agent's and the vRA Manager's sign-in and re-authentication,
QR and mobile sign-in, the phone's answer to a push, the portal's reset step).

An answer is *reserved* with one conditional ``UPDATE … RETURNING`` in its own committed
transaction before it is checked, exactly as passcode attempts are (``services.lockout``):
the counter only moves while it is below the limit and the card is active, so any number of
concurrent answers, on any number of server instances, has at most five checked; answers
still being checked count. Then, in the caller's transaction:

* a right answer resets the count (``Reservation.right``);
* a wrong one keeps its reservation (``Reservation.wrong``); the one that used up the last
  locks the card with reason ``second_factor``, emails the holder the lock link and alerts
  the organisation's RAs;
* an answer that was not checked (malformed, a push still waiting, a transaction that had
  ended, a failed write) gives its reservation back when :func:`reserved` ends.

The portal's reset step is gated by its own limits (per link and per card,
``services.recovery_limits``); its wrong answers count here too (``for_reset``), but a
full counter does not stop it: a card that wrong second factors locked must still be
resettable by its holder through the emailed link, and that link asks for the second factor.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.lockout import (
    MAX_SECOND_FACTOR_FAILURES,
    SECOND_FACTOR_LOCK_REASON,
    SECOND_FACTOR_STATUS_REASON,
)
from cardvault.domain.vocabulary import CardStatus
from cardvault.services.audit import trail as audit
from cardvault.services.notifications import outbox as notifications
from cardvault.services.recovery import reset_links
from cardvault.services.signin.errors import SecondFactorLocked
from cardvault.services.signin.lockout import lock_in_session
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction, without_flush
from cardvault.store.models import Card, Organisation
from cardvault.store.queries import cards as card_queries

#: where a failure happened, in the RA's alert ("… while signing in")
SIGN_IN = "signing in"
RESET = "resetting the passcode in the self-service portal"


class Verdict(StrEnum):
    """Whether a checked second-factor answer was right or wrong."""

    RIGHT = "right"
    WRONG = "wrong"


@dataclass(kw_only=True, eq=False)
class Reservation:
    """One second-factor answer, reserved before it is checked.

    ``count`` is the counter after the reservation, or None when the reset door found the
    counter already full (nothing reserved, nothing to give back)."""

    card_id: str
    count: int | None
    verdict: Verdict | None = None
    #: set by the caller once the transaction that recorded the verdict has committed
    committed: bool = False
    #: this answer locked the card (it was active, and this was the fifth wrong in a row)
    locked_now: bool = False
    #: reserved under the caller's lock on the card's row and not written yet
    #: (``reserved_here``): only a wrong answer writes it
    unwritten: bool = False

    def right(self, session: Session) -> None:
        """The answer was right: the count starts again (in the caller's transaction; an
        unwritten reservation on a count of zero leaves the row as it is)."""
        if not (self.unwritten and self.count == 1):
            right(session, self.card_id)
        self.unwritten = False
        self.verdict = Verdict.RIGHT

    def wrong(
        self, session: Session, rt: Runtime, actor: Actor, *, organisation_id: str, door: str
    ) -> bool:
        """The answer was wrong: the reservation stays. The one that uses up the last alerts
        the RAs and, when the card is active, locks it and emails the holder; returns
        whether this answer locked the card.

        The caller has locked the card's row before it wrote any audit event (the order
        every transaction that locks a card keeps: card, then the audit chain)."""
        self.verdict = Verdict.WRONG
        if self.unwritten:
            card_queries.reserve_attempt(session, card_queries.SECOND_FACTOR, self.card_id)
            self.unwritten = False
        if self.count is None or self.count < MAX_SECOND_FACTOR_FAILURES:
            return False
        self.locked_now = _limit_reached(session, rt, actor, self.card_id, organisation_id, door)
        return self.locked_now


@contextmanager
def reserved(
    rt: Runtime,
    actor: Actor,
    card_id: str,
    *,
    organisation_id: str,
    for_reset: bool = False,
) -> Iterator[Reservation]:
    """Reserve one answer for the block; given back at the end unless a verdict was
    recorded in a transaction that committed. SecondFactorLocked (audited) when the card
    takes no answer now (never for the reset door)."""
    reservation = Reservation(
        card_id=card_id,
        count=_take(rt, actor, card_id, organisation_id, for_reset=for_reset),
    )
    try:
        yield reservation
    finally:
        if reservation.count is not None and not (
            reservation.committed and reservation.verdict is not None
        ):
            give_back(rt, card_id)


def reserved_here(
    session: Session, rt: Runtime, actor: Actor, card: Card, *, organisation_id: str
) -> Reservation:
    """One answer reserved in the caller's transaction, which has locked ``card``'s row
    (and read it fresh under the lock) and checks the answer before it commits (a second
    factor sent with the passcode): the reservation and its verdict commit together, and a
    rollback takes both back, so there is nothing to give back and no transaction of its
    own. SecondFactorLocked (audited in the caller's transaction) when the card takes no
    answer now.

    The reservation's condition is the counter statement's (below the limit, card active),
    checked on the locked row: no other transaction can move the counter before this one
    commits, so the check is as exact as the conditional UPDATE. The reservation is written
    only with a wrong verdict (``Reservation.wrong``); a right one resets the count, which
    needs no write when it was zero (issue 16: a sign-in with its code inline writes no
    second-factor counter at all)."""
    if (
        card.status != CardStatus.ACTIVE
        or card.second_factor_failures >= MAX_SECOND_FACTOR_FAILURES
    ):
        _refused(session, rt, actor, card, organisation_id)
        raise SecondFactorLocked()
    return Reservation(card_id=card.id, count=card.second_factor_failures + 1, unwritten=True)


def _take(
    rt: Runtime, actor: Actor, card_id: str, organisation_id: str, *, for_reset: bool
) -> int | None:
    with transaction(rt.db) as session:
        without_flush(session)  # the verdict's transaction commits it durably
        counter = card_queries.SECOND_FACTOR_FOR_RESET if for_reset else card_queries.SECOND_FACTOR
        count = card_queries.reserve_attempt(session, counter, card_id)
    if count is not None or for_reset:
        return count
    with transaction(rt.db) as session:
        card = session.get(Card, card_id)
        assert card is not None
        _refused(session, rt, actor, card, organisation_id)
    raise SecondFactorLocked()


def _refused(session: Session, rt: Runtime, actor: Actor, card: Card, organisation_id: str) -> None:
    audit.record_for_card(
        session,
        rt,
        actor,
        card,
        action=AuditAction.AUTH_SECOND_FACTOR,
        outcome="failure",
        reason=(
            f"card is {card.status}"
            if card.status != CardStatus.ACTIVE
            else "no second-factor attempt left (others in progress)"
        ),
        organisation_id=organisation_id,
    )


def right(session: Session, card_id: str) -> None:
    """A card session opened by a door whose second factor had no reservation of its own
    left to settle (QR and mobile sign-in): the count starts again."""
    card_queries.reset_second_factor(session, card_id)


def give_back(rt: Runtime, card_id: str) -> None:
    """Nothing was checked: the reserved answer does not count."""
    with transaction(rt.db) as session:
        card_queries.give_back(session, card_queries.SECOND_FACTOR, card_id)


def _limit_reached(
    session: Session, rt: Runtime, actor: Actor, card_id: str, organisation_id: str, door: str
) -> bool:
    """The fifth wrong answer in a row: lock an active card (the holder gets the lock email
    with a reset link) and alert the RAs. A card that is already locked stays as it is: its
    RAs are alerted when something else locked it (a reset of a card wrong passcodes locked),
    not again when an answer in flight ends after the one that locked it."""
    card = session.get(Card, card_id)
    org = session.get(Organisation, organisation_id)
    assert card is not None and org is not None
    locked_now = card.status == CardStatus.ACTIVE
    if not locked_now and card.lock_reason == SECOND_FACTOR_LOCK_REASON:
        return False
    if locked_now:
        lock_in_session(
            session,
            rt,
            actor,
            card,
            reason=SECOND_FACTOR_LOCK_REASON,
            status_reason=SECOND_FACTOR_STATUS_REASON,
        )
        reset_links.send_reset_link(session, rt, actor, card, trigger="locked")
    alerted = notifications.second_factor_lock(session, rt, card, org, door=door)
    audit.record_for_card(
        session,
        rt,
        actor,
        card,
        action=AuditAction.CARD_SECOND_FACTOR_LIMIT,
        reason=SECOND_FACTOR_STATUS_REASON,
        organisation_id=org.id,
        details={"door": door, "locked_now": locked_now, "ra_alerted": len(alerted)},
    )
    return locked_now


def current(rt: Runtime, card_id: str) -> int:
    """The card's count now (tests and the RA's card page)."""
    with rt.db() as session:
        return int(
            session.scalar(select(Card.second_factor_failures).where(Card.id == card_id)) or 0
        )
