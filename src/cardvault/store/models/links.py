"""Single-use, time-limited tokens (unlock/reset, invitation, pairing)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cardvault.json_types import JsonObject
from cardvault.store.models.base import Base, _created, _id


class Link(Base):
    """A single-use, time-limited token: unlock/reset link, invitation, device pairing."""

    __tablename__ = "links"
    __table_args__ = (Index("ix_links_card_purpose", "card_id", "purpose"),)
    id: Mapped[str] = _id()
    purpose: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    card_id: Mapped[str | None] = mapped_column(ForeignKey("cards.id"), index=True)
    person_id: Mapped[str | None] = mapped_column(ForeignKey("persons.id"))
    organisation_id: Mapped[str | None] = mapped_column(ForeignKey("organisations.id"))
    details: Mapped[JsonObject] = mapped_column(JSON, default=dict)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = _created()
    expires_at: Mapped[datetime]
    consumed_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
