"""The holder's own card's recent use, in words: "Signed in from 10.2.3.4 with push".

The events are the audit trail's own (every chain the card appears in: a card works in
each of its holder's organisations), read back for the last ``DAYS`` days, newest first,
in the vRA Manager's phrases (``domain.audit_phrases``) with the address the request came
from where the event kept it. Sign-in steps that repeat what a later line says (the
passcode accepted, the session started) are left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.audit_phrases import REPEATED_STEPS, describe
from cardvault.json_types import JsonValue
from cardvault.services.audit.trail import iso
from cardvault.services.holders.account import signed_in
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import AuditEvent

DAYS = 90
LIMIT = 500


@dataclass(frozen=True, kw_only=True)
class ActivityLine:
    """One event of the holder's recent use, in words."""

    at: datetime
    text: str
    failed: bool


def recent(rt: Runtime, actor: Actor, session_id: str) -> list[ActivityLine]:
    """The signed-in holder's card's events of the last ``DAYS`` days, newest first."""
    with transaction(rt.db) as session:
        card_id = signed_in(session, rt, actor, session_id).card.id
        since = iso(rt.clock() - timedelta(days=DAYS))
        rows = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.card_id == card_id, AuditEvent.occurred_at >= since)
            .order_by(AuditEvent.occurred_at.desc())
            .limit(LIMIT)
        )
        return [line(e) for e in rows if not _quiet(e)]


def _quiet(e: AuditEvent) -> bool:
    action = AuditAction.of(e.action)
    return e.outcome == "success" and action is not None and action in REPEATED_STEPS


def line(e: AuditEvent) -> ActivityLine:
    """An audit event as the holder reads it."""
    return ActivityLine(
        at=datetime.fromisoformat(e.occurred_at.replace("Z", "+00:00")),
        text=words(e.action, e.outcome, e.reason, e.details or {}),
        failed=e.outcome == "failure",
    )


def words(action: str, outcome: str, reason: str | None, details: Mapping[str, JsonValue]) -> str:
    """The phrase, with where the request came from: "Signed in from 10.2.3.4 with push"."""
    phrase = describe(action, outcome, reason=reason, details=details)
    address = details.get("client_address")
    if not isinstance(address, str) or not address:
        return phrase
    if phrase.startswith("Signed in with "):
        return f"Signed in from {address} with {phrase.removeprefix('Signed in with ')}"
    return f"{phrase} (from {address})"
