"""Rows of the hot paths as plain frozen values, read with SQLAlchemy Core.

Loading the session, link, card, PIV row and organisation as ORM objects on every APDU or
signature (identity map, instance state, attribute instrumentation, the ORM's execution
path) cost more than the SELECT itself; the PC/SC relay's snapshot, the signature's session
lookup and the sign-in's identification only read them and write back with their own
statements, so they read just the columns they use into these values. Each class's fields
are named like its table's columns and listed in the order the queries select them. The
organisation's row is :class:`~cardvault.store.queries.organisations.OrganisationRow`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Table

from cardvault.domain.vocabulary import CardStatus, RaRole

__all__ = ["CardRow", "LinkRow", "PivRow", "SessionRow", "columns_of"]


@dataclass(frozen=True, slots=True)
class SessionRow:
    """What the hot paths read of the card session (``card_sessions``)."""

    id: str
    organisation_id: str
    person_id: str
    purpose: str
    acting_organisation_id: str | None
    acting_role: RaRole | None
    expires_at: datetime
    idle_expires_at: datetime
    session_wrap: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class LinkRow:
    """What the relay reads of the reader link (``piv_links``)."""

    id: str
    mode: str
    link_state: str = field(repr=False)
    version: int
    last_seq: int
    last_response: bytes | None = field(repr=False)
    pin_recheck: bytes | None = field(repr=False)
    issuance_wrap: bytes | None = field(repr=False)


@dataclass(frozen=True, slots=True)
class PivRow:
    """What the relay reads of the card's PIV state (``piv_cards``)."""

    state: str = field(repr=False)
    version: int
    secrets: bytes = field(repr=False)
    secrets_version: int
    public_keys: dict[str, str]
    pin_blocked_at: datetime | None


@dataclass(frozen=True, slots=True)
class CardRow:
    """What the hot paths read of the card (``cards``): its ids, status and sealed key record."""

    id: str
    serial: str
    person_id: str
    organisation_id: str
    status: CardStatus
    key_record: bytes | None = field(repr=False)
    record_version: int


def columns_of(table: Table, row: type[Any]) -> list[Column[Any]]:
    """The table's columns a row class holds, in the order of its fields."""
    return [table.c[f.name] for f in fields(row)]
