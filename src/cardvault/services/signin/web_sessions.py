"""Server-side web sessions for the browser areas (vRA Manager, self-service portal).

The browser holds a random 256-bit token in a cookie; the service stores only its SHA-256,
so a database dump yields no usable cookie. A session is idle-limited and absolutely
limited; signing in *rotates* the token (no session fixation). After sign-in the session
points at the card session the authentication engine opened: that card session is the
source of truth, so a logout, lock, revocation or expiry there ends the web session too.

Small page state (a sign-in in progress, a WebAuthn ceremony's state, one-time notices) is
kept in ``data``; never a secret.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError as DbIntegrityError

from cardvault.errors import AuthenticationFailed, InvalidInput
from cardvault.json_types import JsonObject
from cardvault.services.signin import sessions as card_sessions
from cardvault.services.system.runtime import Runtime
from cardvault.store.db import transaction
from cardvault.store.models import CardSession, UsedNonce, WebSession

TOKEN_BYTES = 32
MAX_DATA_KEYS = 32
AREAS = ("ra", "portal")


@dataclass(frozen=True, kw_only=True)
class WebSessionView:
    """What a request needs to know about its web session."""

    id: str
    area: str
    token: str = field(repr=False)
    person_id: str | None
    card_session_id: str | None
    authenticated_at: datetime | None
    data: JsonObject
    #: the token changed in this request: the cookie must be (re)written
    rotated: bool = False

    @property
    def signed_in(self) -> bool:
        """Whether a card session is attached (someone signed in)."""
        return self.card_session_id is not None


def token_hash(token: str) -> str:
    """The stored form of a web-session token (SHA-256)."""
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(token: str) -> str:
    """The form token bound to this web session (HMAC of its cookie token; nothing stored).

    A page from another site cannot read it, and a new session (sign-in rotates) gets a new one.
    """
    return hmac.new(token.encode(), b"cardvault/csrf/v1", hashlib.sha256).hexdigest()


def csrf_ok(token: str, presented: str | None) -> bool:
    """Whether the presented CSRF token is this session's (compared in constant time)."""
    return bool(presented) and hmac.compare_digest(csrf_token(token), presented or "")


def _limits(rt: Runtime, now: datetime) -> tuple[datetime, datetime]:
    absolute = now + timedelta(minutes=rt.settings.web_absolute_minutes)
    idle = min(now + timedelta(minutes=rt.settings.web_idle_minutes), absolute)
    return idle, absolute


def _view(row: WebSession, token: str, *, rotated: bool = False) -> WebSessionView:
    return WebSessionView(
        id=row.id,
        area=row.area,
        token=token,
        person_id=row.person_id,
        card_session_id=row.card_session_id,
        authenticated_at=row.authenticated_at,
        data=dict(row.data or {}),
        rotated=rotated,
    )


def start(rt: Runtime, area: str, *, client_address: str | None) -> WebSessionView:
    """A fresh anonymous session (no sign-in yet)."""
    if area not in AREAS:
        raise InvalidInput(f"Unknown web area {area!r}.")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    now = rt.clock()
    idle, absolute = _limits(rt, now)
    with transaction(rt.db) as session:
        row = WebSession(
            area=area,
            token_hash=token_hash(token),
            data={},
            client_address=(client_address or "")[:64] or None,
            created_at=now,
            last_seen_at=now,
            idle_expires_at=idle,
            expires_at=absolute,
        )
        session.add(row)
        session.flush()
        return _view(row, token, rotated=True)


def load(rt: Runtime, area: str, token: str | None) -> WebSessionView | None:
    """The live session for a cookie token (idle timer restarted), or None.

    A session whose card session has ended is signed out here (its page state dropped).
    """
    if not token or len(token) > 100:
        return None
    now = rt.clock()
    with transaction(rt.db) as session:
        row = session.scalar(
            select(WebSession).where(
                WebSession.token_hash == token_hash(token), WebSession.area == area
            )
        )
        if row is None:
            return None
        if now >= row.expires_at or now >= row.idle_expires_at:
            session.delete(row)
            return None
        if row.card_session_id and session.get(CardSession, row.card_session_id) is None:
            row.card_session_id, row.person_id, row.authenticated_at = None, None, None
            row.data = {}
        row.last_seen_at = now
        row.idle_expires_at = min(
            now + timedelta(minutes=rt.settings.web_idle_minutes), row.expires_at
        )
        return _view(row, token)


def update_data(rt: Runtime, view: WebSessionView, **changes: Any) -> WebSessionView:
    """Set (or, with None, remove) keys of the session's page state.

    The changes are merged into the row's data as read under its lock, not into the view's
    copy read earlier in the request: two requests on one session (a page and its polling
    script) each keep the other's keys.
    """
    with transaction(rt.db) as session:
        row = session.get(WebSession, view.id, with_for_update=True)
        data = _merged(row.data if row is not None else view.data, changes)
        if row is not None:
            row.data = data
    return WebSessionView(**{**view.__dict__, "data": data})


def _merged(current: JsonObject | None, changes: dict[str, Any]) -> JsonObject:
    data = dict(current or {})
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    if len(data) > MAX_DATA_KEYS:
        raise InvalidInput("Too much page state in this session; sign in again.")
    return data


def sign_in(rt: Runtime, view: WebSessionView, *, card_session_id: str) -> WebSessionView:
    """Bind the session to a card session and rotate its token (against session fixation).

    A re-authentication calls this again with the new card session; the old one is ended.
    A re-authentication by another person (an identifier moved to someone else in between)
    is refused: their new card session ends and this web session stays as it was.
    """
    token = secrets.token_urlsafe(TOKEN_BYTES)
    now = rt.clock()
    with transaction(rt.db) as session:
        row = session.get(WebSession, view.id, with_for_update=True)
        if row is None:
            raise InvalidInput("This page has expired; start again.")
        card_session = session.get(CardSession, card_session_id)
        if card_session is None:
            raise InvalidInput("This sign-in has ended; start again.")
        person_id = card_session.person_id
        old = row.card_session_id
        stranger = bool(old) and row.person_id != person_id
        if stranger:
            session.delete(card_session)
        else:
            if old and old != card_session_id:
                session.execute(delete(CardSession).where(CardSession.id == old))
            row.token_hash = token_hash(token)
            row.person_id, row.card_session_id = person_id, card_session_id
            row.authenticated_at = now
            row.data = {k: v for k, v in (row.data or {}).items() if not k.startswith("login_")}
            session.flush()
            signed = _view(row, token, rotated=True)
    if stranger:
        raise AuthenticationFailed(
            "That sign-in was not by the person signed in here.",
            remedy="Sign out, then sign in as yourself.",
        )
    return signed


def needs_reauthentication(
    rt: Runtime, view: WebSessionView, *, max_age_minutes: int | None = None
) -> bool:
    """Whether a sensitive action must first ask for passcode + second factor again."""
    limit = max_age_minutes or rt.settings.web_reauth_minutes
    if view.authenticated_at is None:
        return True
    return rt.clock() - view.authenticated_at > timedelta(minutes=limit)


def end(rt: Runtime, view: WebSessionView) -> str | None:
    """Delete the web session; returns the card session id it was bound to (to end it too)."""
    with transaction(rt.db) as session:
        row = session.get(WebSession, view.id)
        if row is None:
            return None
        card_session_id = row.card_session_id
        session.delete(row)
        return card_session_id


def purge_expired(rt: Runtime) -> int:
    """Delete expired web sessions; how many."""
    return card_sessions.purge_past_expiry(rt, WebSession)


def claim_form(rt: Runtime, view: WebSessionView, form_id: str | None) -> bool:
    """True the first time a form (by its one-time id) is submitted in this session.

    Each rendered form carries a random id; the INSERT on the nonce table's primary key is
    the check, so a double click or a resent POST cannot do the work twice, even when the two
    requests race on different server instances.
    """
    if not form_id or len(form_id) > 64:
        return False
    nonce = "form:" + hashlib.sha256(f"{view.id}:{form_id}".encode()).hexdigest()[:64]
    expires = rt.clock() + timedelta(minutes=rt.settings.web_absolute_minutes)
    try:
        with transaction(rt.db) as session:
            session.add(UsedNonce(nonce=nonce, expires_at=expires))
    except DbIntegrityError:
        return False
    return True
