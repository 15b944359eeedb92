"""The rows a card owns in one organisation: its authentication methods and its devices.

A method or a device belongs to one card *and* to the organisation it was added in (a
holder in two organisations has separate ones in each). Listing them and finding one to
change are scoped the same way for both, and for every caller: the RA sees its own
organisation's, the holder their own card's, the operator all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session

from cardvault.domain.vocabulary import MethodKind, MethodStatus
from cardvault.store.models import Association, Device, table_of

#: a row a card owns in one organisation
Owned = TypeVar("Owned", Association, Device)


def of_card(
    session: Session, model: type[Owned], card_id: str, organisation_id: str | None
) -> list[Owned]:
    """The card's rows of ``model`` (only one organisation's, when given), oldest first."""
    stmt = select(model).where(model.card_id == card_id)
    if organisation_id is not None:
        stmt = stmt.where(model.organisation_id == organisation_id)
    return list(session.scalars(stmt.order_by(model.created_at)))


def in_scope_for_update(
    session: Session,
    model: type[Owned],
    row_id: str,
    *,
    organisation_id: str | None,
    card_id: str | None,
) -> Owned | None:
    """The row, locked for the caller's change, or None when there is no such row or it
    lies outside the organisation or card given (the caller says "no such …" for both, so
    an RA learns nothing of other organisations' rows)."""
    row = session.get(model, row_id, with_for_update=True)
    if row is None:
        return None
    if (organisation_id and row.organisation_id != organisation_id) or (
        card_id and row.card_id != card_id
    ):
        return None
    return row


def active_methods(kind: MethodKind | None = None) -> Select[Association]:
    """The statement for a card's active methods in one organisation (of one ``kind``, when
    given), oldest first; bound by ``card`` and ``organisation``. Callers build it once, so
    that SQLAlchemy reuses its compiled form on every sign-in."""
    stmt = select(Association).where(
        Association.card_id == bindparam("card"),
        Association.organisation_id == bindparam("organisation"),
        Association.status == MethodStatus.ACTIVE,
    )
    if kind is not None:
        stmt = stmt.where(Association.method == kind)
    return stmt.order_by(Association.created_at)


@dataclass(frozen=True, slots=True)
class MethodRow:
    """An active method as a sign-in's offers and code checks read it: the columns they use,
    as a plain value (no ORM object per method on every sign-in; issue 16). Fields are
    named like the table's columns, in the order ``ACTIVE_METHOD_ROWS`` selects them."""

    id: str
    method: MethodKind
    label: str | None
    lookup_key: str
    sealed_secret: bytes | None = field(repr=False)


_METHODS = table_of(Association)
#: the card's active methods of every kind in one organisation, oldest first, as the columns
#: of ``MethodRow(*row)``; bound by ``card`` and ``organisation``
ACTIVE_METHOD_ROWS: Select[Any] = (
    select(*(_METHODS.c[name] for name in ("id", "method", "label", "lookup_key", "sealed_secret")))
    .where(
        _METHODS.c.card_id == bindparam("card"),
        _METHODS.c.organisation_id == bindparam("organisation"),
        _METHODS.c.status == MethodStatus.ACTIVE,
    )
    .order_by(_METHODS.c.created_at)
)
