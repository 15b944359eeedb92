"""The transactional outbox of messages to send."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from cardvault.domain.vocabulary import NotificationStatus
from cardvault.json_types import JsonObject
from cardvault.store.models.base import Base, _created, _id
from cardvault.store.types import StrEnumType


class Notification(Base):
    """Transactional outbox: written with the change, sent after the commit.

    ``context`` holds what the template shows that is not secret (name, time); a message's
    own link or code is in ``sealed_secrets``, sealed under the master key and bound to the
    row's id, and erased once the message is sent or has failed for good. A dispatcher
    claims a row with a conditional UPDATE (``claimed_by``/``claimed_until`` is its lease).
    """

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_due", "status", "next_attempt_at"),
        Index("ix_notifications_org_status", "organisation_id", "status"),
    )
    id: Mapped[str] = _id()
    channel: Mapped[str] = mapped_column(String(10))
    recipient: Mapped[str] = mapped_column(String(254))
    template: Mapped[str] = mapped_column(String(50))
    context: Mapped[JsonObject] = mapped_column(JSON, default=dict)
    organisation_id: Mapped[str | None] = mapped_column(ForeignKey("organisations.id"))
    card_id: Mapped[str | None] = mapped_column(ForeignKey("cards.id"))
    status: Mapped[NotificationStatus] = mapped_column(
        StrEnumType(NotificationStatus, 10), default=NotificationStatus.PENDING, index=True
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = _created()
    next_attempt_at: Mapped[datetime] = _created()
    sent_at: Mapped[datetime | None]
    sealed_secrets: Mapped[bytes | None] = mapped_column(LargeBinary)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None]
    #: a message whose link has expired before it could be sent is not sent at all
    expires_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
