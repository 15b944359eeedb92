"""Undelivered messages as an RA sees them: their organisation's only, newest first.

A message that failed for good has already lost its link or code (the dispatcher erases
it); the RA sees what :class:`notifications.FailedNotification` holds, the template's
title, and the card holder the message was about when that person belongs to the
organisation the RA acts in (DESIGN §3.6).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from cardvault.notify.templates import title
from cardvault.services.notifications import outbox as notifications
from cardvault.services.notifications.outbox import Channel, FailedNotification
from cardvault.services.ra.actions import RaContext
from cardvault.services.system.runtime import Runtime
from cardvault.store.models import Card, Membership, Person

LIMIT = 200
CHANNELS: dict[str, str] = {Channel.EMAIL: "Email", Channel.SMS: "Text message"}


@dataclass(frozen=True, kw_only=True)
class Holder:
    """The holder a message was for."""

    user_id: str
    name: str
    card_serial: str


@dataclass(frozen=True, kw_only=True)
class UndeliveredMessage:
    """A message that has not gone out, and why."""

    queued_at: datetime
    failed_at: datetime | None
    channel: str
    title: str
    recipient: str
    holder: Holder | None
    attempts: int
    last_error: str | None


@dataclass(frozen=True, kw_only=True)
class Undelivered:
    """The organisation's messages that have not gone out (newest first, up to a limit)."""

    messages: list[UndeliveredMessage]
    limit: int
    #: the limit was reached: older undelivered messages exist and are not shown
    truncated: bool


def undelivered(rt: Runtime, ctx: RaContext, *, limit: int = LIMIT) -> Undelivered:
    """The newest ``limit`` messages of the RA's organisation that failed for good."""
    rows = notifications.failed(rt, ctx.organisation_id, limit=limit + 1)
    shown = rows[:limit]
    holders = _holders(rt, ctx, {r.card_id for r in shown if r.card_id})
    return Undelivered(
        messages=[_message(r, holders.get(r.card_id or "")) for r in shown],
        limit=limit,
        truncated=len(rows) > limit,
    )


def _holders(rt: Runtime, ctx: RaContext, card_ids: set[str]) -> dict[str, Holder]:
    """Card id → its holder, for cards whose holder is a member of the RA's organisation."""
    if not card_ids:
        return {}
    with rt.db() as session:
        rows = session.execute(
            select(Card.id, Card.serial, Person.user_id, Person.common_name)
            .join(Person, Person.id == Card.person_id)
            .join(Membership, Membership.person_id == Person.id)
            .where(Card.id.in_(card_ids), Membership.organisation_id == ctx.organisation_id)
        )
        return {
            card_id: Holder(user_id=user_id, name=name, card_serial=serial)
            for card_id, serial, user_id, name in rows
        }


def _message(row: FailedNotification, holder: Holder | None) -> UndeliveredMessage:
    return UndeliveredMessage(
        queued_at=row.created_at,
        failed_at=row.failed_at,
        channel=CHANNELS.get(row.channel, row.channel),
        title=title(row.template),
        recipient=row.recipient,
        holder=holder,
        attempts=row.attempts,
        last_error=row.last_error,
    )
