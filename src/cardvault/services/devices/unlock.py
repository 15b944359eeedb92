"""Opening a card from a device flow: the passcode counts towards the lockout like anywhere
else, and an opened card becomes a card session whose key SK goes only to the caller."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from cardvault.crypto.keyslots import (
    WrongSecret,
    new_session_key,
    open_passcode_slot,
    wrap_for_session,
)
from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.vocabulary import SignInRoute
from cardvault.errors import InvalidInput
from cardvault.services.cards.sealing import open_record
from cardvault.services.devices.errors import RouteNotAllowed
from cardvault.services.signin import lockout
from cardvault.services.signin import sessions as card_sessions
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import Card, Organisation
from cardvault.store.queries.organisations import policy_of
from cardvault.store.types import new_id

MAX_PASSCODE = 256


@dataclass(frozen=True, kw_only=True)
class OpenedSession:
    """A card session opened on the phone (biometric unlock or passcode)."""

    token: str = field(repr=False)
    session_key: str = field(repr=False)  # standard base64, as /auth/login gives it
    session_id: str
    expires_at: datetime
    idle_expires_at: datetime
    card_serial: str
    organisation: str

    def as_dict(self) -> dict[str, str]:
        """The opened session as JSON for the phone."""
        return {
            "token": self.token,
            "session_key": self.session_key,
            "expires_at": self.expires_at.isoformat(),
            "idle_expires_at": self.idle_expires_at.isoformat(),
            "card_serial": self.card_serial,
            "organisation": self.organisation,
        }


def check_passcode_text(passcode: str | None) -> str:
    """The passcode if it is text of a sensible length; raises InvalidInput otherwise."""
    if not isinstance(passcode, str) or not passcode or len(passcode) > MAX_PASSCODE:
        raise InvalidInput("Enter your passcode.", field="passcode")
    return passcode


def require_route(org: Organisation, route: SignInRoute, what: str) -> None:
    """The organisation's policy allows sign-ins that start this way, or RouteNotAllowed."""
    if not policy_of(org).allows(route):
        raise RouteNotAllowed(f"{org.name} does not allow {what}.", method=route)


def open_with_passcode(
    rt: Runtime, actor: Actor, card: Card, passcode: str, *, action: AuditAction
) -> bytearray:
    """The DEK if the passcode is right (attempt reserved first); WrongPasscode otherwise.

    The caller resets the counter in its transaction: ``card_queries.passcode_right`` (one
    ``UPDATE … RETURNING`` that also locks the card's row), or ``lockout.passcode_right`` on
    a row it already holds locked.
    """
    with rt.kdf_gate.slot():
        reserved = lockout.reserve_attempt(rt, card.id)
        record = open_record(rt.master_key, card)
        try:
            return open_passcode_slot(record, passcode)
        except WrongSecret:
            raise lockout.passcode_wrong(rt, actor, card.id, reserved, action=action) from None


def open_session(
    session: Session,
    rt: Runtime,
    actor: Actor,
    *,
    card: Card,
    org: Organisation,
    dek: bytearray,
    method: str,
    client_address: str | None,
) -> OpenedSession:
    """A card session from an opened DEK (wiped by the caller); SK is returned, not stored."""
    sk = new_session_key()
    session_id = new_id()
    try:
        wrap = wrap_for_session(dek, sk, session_id=session_id)
        grant = card_sessions.new_session(
            session,
            card=card,
            organisation=org,
            wrap=wrap,
            purpose="holder",
            method=method,
            now=rt.clock(),
            client_address=client_address,
            session_id=session_id,
        )
        return OpenedSession(
            token=grant.token,
            session_key=base64.b64encode(bytes(sk)).decode(),
            session_id=session_id,
            expires_at=grant.expires_at,
            idle_expires_at=grant.idle_expires_at,
            card_serial=card.serial,
            organisation=org.code,
        )
    finally:
        sk[:] = bytes(len(sk))
