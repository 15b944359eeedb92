"""Atomic statements on a card's row: tries reserved before a check, and the row lock.

A try (a passcode, a second-factor answer, a wrong recovery answer) is *reserved* with one
conditional ``UPDATE … RETURNING`` before the KDF runs or the answer is checked: the counter
only moves while it is below its limit (and, for some, while the card's status allows it),
so concurrent tries on any number of server instances cannot together take more than the
limit; tries still being checked count. The statements are built once: a reservation is on
every sign-in's path, and SQLAlchemy reuses their compiled form.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import BindParameter, ColumnElement, Update, bindparam, update
from sqlalchemy.orm import Session

from cardvault.domain.lockout import MAX_ATTEMPTS, MAX_SECOND_FACTOR_FAILURES, OPENABLE
from cardvault.domain.vocabulary import CardStatus
from cardvault.store.models import Card, table_of

#: wrong recovery tries one card takes across all its reset links before only an RA can help
RECOVERY_MAX_FAILURES = 10

_CARDS = table_of(Card)
_CARD: BindParameter[str] = bindparam("counter_card")


@dataclass(frozen=True, eq=False)
class Counter:
    """One of a card's try counters, with the statement that reserves a try on it."""

    column: str
    take: Update


def _counter(column: str, limit: int, *when: ColumnElement[bool]) -> Counter:
    col = _CARDS.c[column]
    take = (
        update(_CARDS)
        .where(_CARDS.c.id == _CARD, col < limit, *when)
        .values({column: col + 1})
        .returning(col)
    )
    return Counter(column, take)


#: passcode attempts: only while the card can be opened at all (DESIGN §3.3)
PASSCODE = _counter("failed_attempts", MAX_ATTEMPTS, _CARDS.c.status.in_(OPENABLE))
#: consecutive wrong second factors across transactions and doors: an active card only
SECOND_FACTOR = _counter(
    "second_factor_failures",
    MAX_SECOND_FACTOR_FAILURES,
    _CARDS.c.status == CardStatus.ACTIVE,
)
#: the same counter from the reset door: any status its link allows (the link has checked)
SECOND_FACTOR_FOR_RESET = _counter("second_factor_failures", MAX_SECOND_FACTOR_FAILURES)
#: wrong recovery tries across all of a card's reset links
RECOVERY = _counter("recovery_failures", RECOVERY_MAX_FAILURES)

_RESET_SECOND_FACTOR = update(_CARDS).where(_CARDS.c.id == _CARD).values(second_factor_failures=0)
# an ORM statement: it returns the card's row as an entity of the caller's session
_PASSCODE_RIGHT = update(Card).where(Card.id == _CARD).values(failed_attempts=0).returning(Card)


def reserve_attempt(session: Session, counter: Counter, card_id: str) -> int | None:
    """Take one try: the count after it, or None when the condition refused it.

    A Core statement on the session's connection, so the caller's pending changes are not
    flushed with it: callers reserve in a transaction of its own, committed at once.
    """
    count = session.connection().scalar(counter.take, {"counter_card": card_id})
    return None if count is None else int(count)


def give_back(session: Session, counter: Counter, card_id: str) -> None:
    """Return one reserved try (never below zero): its answer was right, or not checked.

    An ORM statement in the caller's transaction: pending changes are flushed first, and a
    card row already loaded in the session sees the new count.
    """
    column = getattr(Card, counter.column)
    session.execute(
        update(Card).where(Card.id == card_id, column > 0).values({counter.column: column - 1})
    )


def reset_second_factor(session: Session, card_id: str) -> None:
    """A right second factor: the count of consecutive wrong ones starts again."""
    session.connection().execute(_RESET_SECOND_FACTOR, {"counter_card": card_id})


def for_update(session: Session, card_id: str) -> Card:
    """The card's row, locked for the rest of the caller's transaction (it must exist)."""
    card = session.get(Card, card_id, with_for_update=True)
    assert card is not None, card_id
    return card


def passcode_right(session: Session, card_id: str) -> Card:
    """The passcode opened the slot: the attempt counter starts again, and the card's row
    comes back fresh and locked for the rest of the caller's transaction (it must exist).

    One ``UPDATE … RETURNING`` instead of :func:`for_update` and an UPDATE: the UPDATE
    takes the row's write lock as the SELECT … FOR UPDATE did (PostgreSQL waits for any
    transaction holding it and then returns the row as that one committed it; SQLite's
    BEGIN IMMEDIATE serialises all writers anyway), so what the caller checks on the card
    (its status, its second-factor count) cannot change before it commits.
    """
    card = session.scalars(
        _PASSCODE_RIGHT,
        {"counter_card": card_id},
        execution_options={"populate_existing": True, "synchronize_session": False},
    ).one()
    return card
