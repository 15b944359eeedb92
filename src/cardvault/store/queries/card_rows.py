"""The rows a card owns in one organisation: its authentication methods and its devices.

A method or a device belongs to one card *and* to the organisation it was added in (a
holder in two organisations has separate ones in each). Listing them and finding one to
change are scoped the same way for both, and for every caller: the RA sees its own
organisation's, the holder their own card's, the operator all of them.
"""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session

from cardvault.domain.vocabulary import MethodKind, MethodStatus
from cardvault.store.models import Association, Device

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
