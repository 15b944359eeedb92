"""Single-use, time-limited links (DESIGN §3.3): reset links and invitations.

(The vRA Manager's helpers :func:`new_link`, :func:`url`, :func:`queue` and
:func:`message_context` are kept at the end; they use the same rows and the same outbox.)

A link is a random 256-bit token that travels only in the email; the service stores its
SHA-256. Every state change on a link is one conditional UPDATE, so that on any number of
server instances:

- a new link of a purpose revokes the card's older open links of that purpose;
- a wrong answer is *reserved* before the KDF runs (like a passcode attempt), so a link
  allows at most ``max_failures`` wrong tries however many arrive at once;
- consuming a link succeeds for exactly one caller.

Opening a page from a link (a GET, which mail scanners also do) never changes it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardvault.json_types import JsonObject
from cardvault.notify.templates import TemplateValue, format_when
from cardvault.services.notifications import outbox as notifications
from cardvault.services.recovery.errors import LinkInvalid, LinkUsed, LinkWornOut
from cardvault.services.system.runtime import Runtime
from cardvault.store.db import transaction
from cardvault.store.models import Card, Link, Notification
from cardvault.store.queries import links as link_queries

TOKEN_BYTES = 32
#: a token is URL-safe base64 of 32 bytes: 43 characters
TOKEN_LENGTH = 43


class Purpose(StrEnum):
    """What a single-use link is for: a passcode reset, or an invitation to enrol."""

    RESET = "reset"
    INVITATION = "invitation"


RESET = Purpose.RESET.value
INVITATION = Purpose.INVITATION.value
#: where the self-service portal answers each purpose
PORTAL_PATHS = {RESET: "/portal/reset", INVITATION: "/portal/invitation"}
#: the context keys of a message that are secret: sealed in the outbox, never stored clear
SEALED_KEYS = frozenset({"link", "code"})
#: a page opened with less left than this says so, to the second (it may run out mid-form)
CLOSING = timedelta(minutes=1)


@dataclass(frozen=True, kw_only=True)
class NewLink:
    """A link just made: its id, the token for the email (never stored), and its expiry."""

    link_id: str
    token: str
    expires_at: datetime


def new_token() -> str:
    """A fresh link token (URL-safe, from ``secrets``)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """The stored form of a link token (SHA-256)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_bytes(token: str) -> bytes:
    """The raw 32 bytes behind a link token (the invitation slot's key material)."""
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def create(
    session: Session,
    rt: Runtime,
    *,
    purpose: Purpose,
    card: Card,
    minutes: int,
    details: JsonObject | None = None,
    token: str | None = None,
) -> NewLink:
    """A new link for ``card``; the card's older open links of this purpose die with it.

    ``token`` is for a caller that needs it before the row exists (an invitation derives
    a key slot from it); by default a fresh one is drawn.
    """
    now = rt.clock()
    revoke_open(session, card.id, now, purpose)
    token = token or new_token()
    if not _well_formed(token):
        raise ValueError("a link token is 43 URL-safe base64 characters")
    link = Link(
        purpose=purpose.value,
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
    return NewLink(link_id=link.id, token=token, expires_at=link.expires_at)


def _well_formed(token: str) -> bool:
    return (
        isinstance(token, str)
        and len(token) == TOKEN_LENGTH
        and token.isascii()
        and all(c.isalnum() or c in "-_" for c in token)
    )


def find(session: Session, token: str, purpose: Purpose) -> Link:
    """The link for ``token`` whatever its state (LinkInvalid when there is none)."""
    link = None
    if _well_formed(token):
        link = session.scalar(select(Link).where(Link.token_hash == token_hash(token)))
    # the lookup is by hash; compare again in constant time rather than trust the index
    if (
        link is None
        or not hmac.compare_digest(link.token_hash, token_hash(token))
        or link.purpose != purpose.value
    ):
        raise LinkInvalid(
            "This link is not valid. Check that you copied the whole address.",
            reason="unknown",
            remedy=_REMEDY[purpose],
        )
    return link


def check_live(link: Link, now: datetime, *, max_failures: int) -> None:
    """Raise the LinkInvalid that tells the holder why this link no longer works."""
    purpose = Purpose(link.purpose)
    if link.consumed_at is not None:
        raise LinkInvalid(
            "This link has already been used.", reason="used", remedy=_REMEDY[purpose]
        )
    if link.revoked_at is not None:
        raise LinkInvalid(
            "This link has been replaced by a newer one, or your card changed since we sent it.",
            reason="revoked",
            remedy="Use the newest link we sent you. " + _REMEDY[purpose],
        )
    if now >= link.expires_at:
        raise LinkInvalid(
            f"This link expired on {format_when(link.expires_at)}.",
            reason="expired",
            remedy=_REMEDY[purpose],
        )
    if link.failed_attempts >= max_failures:
        raise worn_out(purpose)


def live(session: Session, rt: Runtime, token: str, purpose: Purpose, max_failures: int) -> Link:
    """The link for this token if it can still be used; raises LinkInvalid (unknown,
    expired, replaced) or LinkWornOut."""
    link = find(session, token, purpose)
    check_live(link, rt.clock(), max_failures=max_failures)
    return link


def closing(link: Link, now: datetime) -> bool:
    """Whether a live link has less than a minute left: its page warns, with the time."""
    return link.expires_at - now < CLOSING


def worn_out(purpose: Purpose) -> LinkWornOut:
    """The refusal for a link with too many wrong answers."""
    return LinkWornOut(
        "This link no longer works: too many answers given through it were wrong.",
        reason="too_many_failures",
        remedy=_REMEDY[purpose],
    )


def reserve_failure(rt: Runtime, link_id: str, max_failures: int) -> int:
    """Take one try before checking an answer, in its own committed transaction.

    Returns the count reserved; raises LinkInvalid when the link has no try left or is no
    longer live. A right answer gives the try back with :func:`release_failure`.
    """
    now = rt.clock()
    with transaction(rt.db) as session:
        count = link_queries.reserve_failure(session, link_id, now, max_failures)
        if count is None:
            link = session.get(Link, link_id)
            assert link is not None
            check_live(link, now, max_failures=max_failures)
            raise worn_out(Purpose(link.purpose))
    return count


release_failure = link_queries.release_failure


def consume(session: Session, rt: Runtime, link_id: str) -> None:
    """Mark the link used; of any number of concurrent callers exactly one gets here."""
    if not link_queries.consume_link(session, link_id, rt.clock()):
        raise LinkUsed(
            "This link has just been used or has stopped working, so nothing was changed.",
            remedy="If you did not finish, ask for a new link.",
        )


def revoke_open(session: Session, card_id: str, now: datetime, purpose: Purpose) -> None:
    """End every open link of this purpose for the card (a new one replaces them)."""
    link_queries.revoke_open(session, card_id=card_id, now=now, purpose=purpose.value)


_REMEDY = {
    Purpose.RESET: "Ask for a new link on the 'Forgotten your passcode?' page of the portal.",
    Purpose.INVITATION: "Ask your Registration Authority to send you a new invitation.",
}


# --- the vRA Manager's helpers --------------------------------------------------------------


def new_link(
    session: Session,
    rt: Runtime,
    *,
    purpose: str,
    card: Card,
    minutes: int,
    details: JsonObject | None = None,
) -> tuple[Link, str]:
    """A fresh link for the card (older open links of this purpose revoked); its token."""
    made = create(
        session, rt, purpose=Purpose(purpose), card=card, minutes=minutes, details=details
    )
    link = session.get(Link, made.link_id)
    assert link is not None
    return link, made.token


def url(rt: Runtime, purpose: str, token: str) -> str:
    """The portal address of a link."""
    return f"{rt.settings.base_url.rstrip('/')}{PORTAL_PATHS[purpose]}/{token}"


def queue(
    session: Session,
    rt: Runtime,
    *,
    channel: str,
    recipient: str,
    template: str,
    context: JsonObject,
    card: Card | None = None,
    organisation_id: str | None = None,
    expires_at: datetime | None = None,
) -> Notification:
    """Write an outbox row; ``link``/``code`` in ``context`` are sealed, never stored clear."""
    notification_id = notifications.enqueue(
        session,
        rt,
        channel=notifications.Channel(channel),
        template=template,
        recipient=recipient,
        context={k: v for k, v in context.items() if k not in SEALED_KEYS},
        secrets={k: str(v) for k, v in context.items() if k in SEALED_KEYS},
        organisation_id=organisation_id or (card.organisation_id if card else None),
        card_id=card.id if card else None,
        expires_at=expires_at,
    )
    session.flush()
    row = session.get(Notification, notification_id)
    assert row is not None
    return row


def message_context(rt: Runtime, notification: Notification) -> dict[str, TemplateValue]:
    """The template context with its sealed values opened (for the dispatcher only)."""
    return notifications.full_context(rt, notification)
