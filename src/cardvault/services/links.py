"""Single-use links (reset, invitation) and the notifications that carry them.

A link's token is 256 random bits, sent as base64url; the ``links`` row keeps only the
SHA-256 (hex) of that text. A new link of the same purpose revokes the card's older ones.

The outbox row (``notifications``) is written in the same transaction as the change that
caused it, but a clear link or code must not sit in the database: the values a message
template needs that are secret (``link``, ``code``) are sealed under the master key, bound
to the notification's id, in ``context["sealed"]``. The dispatcher calls
``message_context(rt, notification)`` to get the full template context just before sending.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from cardvault.crypto.aead import aad
from cardvault.services.runtime import Runtime
from cardvault.store.models import Card, Link, Notification
from cardvault.store.types import new_id

RESET = "reset"
INVITATION = "invitation"
#: where the self-service portal answers each purpose (the portal issue builds the pages)
PORTAL_PATHS = {RESET: "/portal/reset", INVITATION: "/portal/invitation"}
TOKEN_BYTES = 32
SEALED_KEYS = frozenset({"link", "code"})


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_bytes(token: str) -> bytes:
    """The raw 32 bytes behind a link token (the invitation slot's key material)."""
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def new_link(
    session: Session,
    rt: Runtime,
    *,
    purpose: str,
    card: Card,
    minutes: int,
    details: dict[str, Any] | None = None,
) -> tuple[Link, str]:
    """A fresh link for the card (older open links of this purpose revoked); its token."""
    now = rt.clock()
    session.execute(
        update(Link)
        .where(
            Link.card_id == card.id,
            Link.purpose == purpose,
            Link.consumed_at.is_(None),
            Link.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    token = base64.urlsafe_b64encode(secrets.token_bytes(TOKEN_BYTES)).decode().rstrip("=")
    link = Link(
        purpose=purpose,
        token_hash=token_hash(token),
        card_id=card.id,
        person_id=card.person_id,
        organisation_id=card.organisation_id,
        details=details or {},
        created_at=now,
        expires_at=now + timedelta(minutes=minutes),
    )
    session.add(link)
    session.flush()
    return link, token


def url(rt: Runtime, purpose: str, token: str) -> str:
    return f"{rt.settings.base_url.rstrip('/')}{PORTAL_PATHS[purpose]}/{token}"


def queue(
    session: Session,
    rt: Runtime,
    *,
    channel: str,
    recipient: str,
    template: str,
    context: dict[str, Any],
    card: Card | None = None,
    organisation_id: str | None = None,
) -> Notification:
    """Write an outbox row; ``link``/``code`` in ``context`` are sealed, never stored clear."""
    notification_id = new_id()
    secret = {k: v for k, v in context.items() if k in SEALED_KEYS}
    stored = {k: v for k, v in context.items() if k not in SEALED_KEYS}
    if secret:
        blob = rt.master_key.seal(
            json.dumps(secret).encode(), aad=aad("notification-secret", notification_id)
        )
        stored["sealed"] = base64.b64encode(blob).decode()
    row = Notification(
        id=notification_id,
        channel=channel,
        recipient=recipient,
        template=template,
        context=stored,
        organisation_id=organisation_id or (card.organisation_id if card else None),
        card_id=card.id if card else None,
        created_at=rt.clock(),
        next_attempt_at=rt.clock(),
    )
    session.add(row)
    return row


def message_context(rt: Runtime, notification: Notification) -> dict[str, Any]:
    """The template context with its sealed values opened (for the dispatcher only)."""
    context = dict(notification.context)
    sealed = context.pop("sealed", None)
    if sealed:
        plain = rt.master_key.open(
            base64.b64decode(sealed), aad=aad("notification-secret", notification.id)
        )
        try:
            context.update(json.loads(bytes(plain)))
        finally:
            plain[:] = bytes(len(plain))
    return context
