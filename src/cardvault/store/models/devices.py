"""Paired phones and the push challenges sent to them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from cardvault.domain.push_policy import PushStatus
from cardvault.json_types import JsonObject
from cardvault.store.models.base import Base, _created, _id
from cardvault.store.types import StrEnumType


class Device(Base):
    """A paired phone: authenticator app or mobile identity agent."""

    __tablename__ = "devices"
    id: Mapped[str] = _id()
    card_id: Mapped[str] = mapped_column(ForeignKey("cards.id"), index=True)
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    platform: Mapped[str] = mapped_column(String(40))
    application: Mapped[str] = mapped_column(String(20))
    public_key_der: Mapped[bytes] = mapped_column(LargeBinary)
    sealed_totp_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_last_step: Mapped[int] = mapped_column(BigInteger, default=0)
    biometric_slot: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(10), default="active")
    created_at: Mapped[datetime] = _created()
    last_seen_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class PushChallenge(Base):
    """A push sign-in request to a card's paired devices (number matching, single use).

    ``transaction_id`` is cleared when the sign-in ends; the row stays for the back-off.
    """

    __tablename__ = "push_challenges"
    __table_args__ = (Index("ix_push_challenges_card_created", "card_id", "created_at"),)
    id: Mapped[str] = _id()
    transaction_id: Mapped[str | None] = mapped_column(
        ForeignKey("auth_transactions.id", ondelete="SET NULL"), index=True
    )
    card_id: Mapped[str] = mapped_column(ForeignKey("cards.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[PushStatus] = mapped_column(
        StrEnumType(PushStatus, 12), default=PushStatus.PENDING
    )
    context: Mapped[JsonObject] = mapped_column(JSON, default=dict)
    device_id: Mapped[str | None] = mapped_column(ForeignKey("devices.id"))
    created_at: Mapped[datetime] = _created()
    expires_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]
