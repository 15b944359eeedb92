"""How long a browser session has left: what a page needs to warn before it ends (WCAG 2.2.1).

A web session (``web_sessions``) ends at the earlier of its idle and absolute limits and, once
signed in, at the earlier of those of the card session it is bound to (the organisation's
policy). The pages say these limits and warn two minutes before the session ends; "Stay
signed in" restarts both idle timers, as loading any page does. ``peek`` reads without
restarting anything, so a page can ask whether another tab kept the session alive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardvault.domain.org_policy import OrganisationPolicy
from cardvault.errors import CardvaultError
from cardvault.services.signin import sessions as card_sessions
from cardvault.services.signin.web_sessions import token_hash
from cardvault.services.system.runtime import Runtime
from cardvault.store.db import transaction
from cardvault.store.models import CardSession, Organisation, WebSession
from cardvault.store.queries.organisations import policy_of


@dataclass(frozen=True, kw_only=True)
class SessionLimits:
    """The limits in force for one web session, and when they fall."""

    signed_in: bool
    #: the session ends after this many minutes without a request
    idle_minutes: int
    #: and this long after it began, whatever happens
    absolute_minutes: int
    #: when it ends if nothing happens before
    idle_ends_at: datetime
    #: when it ends whatever happens (a request cannot move this)
    ends_at: datetime

    def seconds_left(self, now: datetime) -> tuple[int, int]:
        """(until the idle end, until the absolute end), never below zero."""
        return (
            max(0, int((self.idle_ends_at - now).total_seconds())),
            max(0, int((self.ends_at - now).total_seconds())),
        )


def _limits(session: Session, rt: Runtime, web: WebSession) -> SessionLimits | None:
    now = rt.clock()
    if now >= web.expires_at or now >= web.idle_expires_at:
        return None
    idle_minutes = rt.settings.web_idle_minutes
    absolute_minutes = rt.settings.web_absolute_minutes
    idle_ends_at, ends_at = web.idle_expires_at, web.expires_at
    card = session.get(CardSession, web.card_session_id) if web.card_session_id else None
    if card is not None:
        org = session.get(Organisation, card.acting_organisation_id or card.organisation_id)
        policy = policy_of(org) if org else OrganisationPolicy.from_dict({})
        idle_minutes = min(idle_minutes, policy.session_idle_minutes)
        absolute_minutes = min(absolute_minutes, policy.session_absolute_minutes)
        idle_ends_at = min(idle_ends_at, card.idle_expires_at)
        ends_at = min(ends_at, card.expires_at)
    return SessionLimits(
        signed_in=card is not None,
        idle_minutes=idle_minutes,
        absolute_minutes=absolute_minutes,
        idle_ends_at=min(idle_ends_at, ends_at),
        ends_at=ends_at,
    )


def read(rt: Runtime, web_session_id: str) -> SessionLimits | None:
    """The limits of a live web session (by id), or None when it has ended."""
    with rt.db() as session:
        web = session.get(WebSession, web_session_id)
        return None if web is None else _limits(session, rt, web)


def peek(rt: Runtime, area: str, token: str | None) -> SessionLimits | None:
    """The limits of the session behind a cookie token, restarting no timer; None if none."""
    if not token or len(token) > 100:
        return None
    with rt.db() as session:
        web = session.scalar(
            select(WebSession).where(
                WebSession.token_hash == token_hash(token), WebSession.area == area
            )
        )
        return None if web is None else _limits(session, rt, web)


def extend(rt: Runtime, web_session_id: str, *, client_address: str | None) -> SessionLimits | None:
    """Restart the idle timer of the card session too ("Stay signed in"); the web session's
    own was restarted by loading it. None when the session has ended meanwhile."""
    with transaction(rt.db) as session:
        web = session.get(WebSession, web_session_id)
        if web is None:
            return None
        if web.card_session_id:
            try:
                card_sessions.use_id(
                    session, rt, web.card_session_id, client_address=client_address
                )
            except CardvaultError:  # ended, or no longer allowed from here
                return None
        return _limits(session, rt, web)
