"""Card sessions (DESIGN §3.2 steps 3-4): token in, the session's state out, or refused.

The service stores only the SHA-256 of the session token and ``wrap(DEK, SK)``; the client
holds the token and SK. Expiry (absolute and idle, from the organisation's policy), logout,
lock and revocation delete the row, and with it every way to use the card in that session.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import Connection, bindparam, delete, func, insert, select
from sqlalchemy.orm import Session

from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.org_policy import OrganisationPolicy
from cardvault.domain.vocabulary import CardStatus, RaRole
from cardvault.errors import NotFound, PermissionDenied
from cardvault.json_types import JsonObject
from cardvault.keystore.provider import MasterKey
from cardvault.services.audit import trail as audit
from cardvault.services.networks import allow_list as network
from cardvault.services.piv.statements import TOUCH_SESSION
from cardvault.services.signin.errors import SessionInvalid
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.services.transport import channel
from cardvault.store.db import transaction
from cardvault.store.models import (
    Card,
    CardSession,
    Organisation,
    RaRoleGrant,
    WebSession,
    table_of,
)
from cardvault.store.queries import role_grants
from cardvault.store.queries.organisations import AnyOrg, OrganisationRow, policy_of
from cardvault.store.queries.rows import CardRow, SessionRow, columns_of

TOKEN_BYTES = 32


@dataclass(frozen=True, kw_only=True)
class NewSession:
    """A card session just opened: the token and key the client keeps."""

    token: str
    session_id: str
    expires_at: datetime
    idle_expires_at: datetime
    #: the session channel key CK (DESIGN §3.5 revised), for the client only
    channel_key: bytes | None = field(default=None, repr=False)


def token_hash(token: str) -> str:
    """The stored form of a session token (SHA-256)."""
    return hashlib.sha256(token.encode()).hexdigest()


_INSERT_SESSION = insert(table_of(CardSession))


def new_session(
    session: Session,
    *,
    card: Card,
    organisation: AnyOrg,
    wrap: bytes,
    purpose: str,
    method: str,
    now: datetime,
    client_address: str | None,
    session_id: str,
    master: MasterKey | None = None,
) -> NewSession:
    """The session row; with ``master``, also its channel key CK, sealed beside it."""
    ck, sealed_ck = channel.new_key(master, channel.SESSION, session_id) if master else (None, None)
    policy = policy_of(organisation)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    absolute = now + timedelta(minutes=policy.session_absolute_minutes)
    idle = min(now + timedelta(minutes=policy.session_idle_minutes), absolute)
    # a Core INSERT on the session's connection, not an ORM object flushed by the unit of
    # work: nothing in the opening transaction reads the row back (issue 16)
    session.connection().execute(
        _INSERT_SESSION,
        {
            "id": session_id,
            "card_id": card.id,
            "organisation_id": organisation.id,
            "person_id": card.person_id,
            "token_hash": token_hash(token),
            "session_wrap": wrap,
            "channel_key": sealed_ck,
            "purpose": purpose,
            "method": method,
            "client_address": client_address,
            "created_at": now,
            "last_used_at": now,
            "expires_at": absolute,
            "idle_expires_at": idle,
        },
    )
    out = NewSession(
        token=token,
        session_id=session_id,
        expires_at=absolute,
        idle_expires_at=idle,
        channel_key=bytes(ck) if ck is not None else None,
    )
    if ck is not None:
        ck[:] = bytes(len(ck))
    return out


# Built once: every card operation looks its session up, and SQLAlchemy reuses the compiled
# form of a statement object it has seen. The session row (locked for this transaction),
# its card and the organisation it acts in come in one statement, not three; all three are
# read fresh (``populate_existing``), the card's status above all.
_SESSION_CARD_ORGANISATION = (
    select(CardSession, Card, Organisation)
    .outerjoin(Card, Card.id == CardSession.card_id)
    .outerjoin(
        Organisation,
        Organisation.id
        == func.coalesce(CardSession.acting_organisation_id, CardSession.organisation_id),
    )
    .with_for_update(of=CardSession)
    .execution_options(populate_existing=True)
)
_SESSION_BY_TOKEN = _SESSION_CARD_ORGANISATION.where(
    CardSession.token_hash == bindparam("token_hash")
)
_SESSION_BY_ID = _SESSION_CARD_ORGANISATION.where(CardSession.id == bindparam("session_id"))
_Found = tuple[CardSession, Card | None, Organisation | None]


def use(
    session: Session,
    rt: Runtime,
    token: str,
    *,
    client_address: str | None,
    purpose: str | None = None,
) -> tuple[CardSession, Card]:
    """The live session for a token, its idle timer restarted; SessionInvalid otherwise."""
    found = session.execute(_SESSION_BY_TOKEN, {"token_hash": token_hash(token)}).first()
    return _live(rt, found, client_address=client_address, purpose=purpose)


def use_id(
    session: Session,
    rt: Runtime,
    session_id: str,
    *,
    client_address: str | None,
    purpose: str | None = None,
) -> tuple[CardSession, Card]:
    """Like ``use``, for a shell that keeps the session by id behind its own credential
    (the web areas keep it behind their hashed cookie; see services/signin/web_sessions.py)."""
    found = session.execute(_SESSION_BY_ID, {"session_id": session_id}).first()
    return _live(rt, found, client_address=client_address, purpose=purpose)


def _live(
    rt: Runtime,
    found: _Found | None,
    *,
    client_address: str | None,
    purpose: str | None,
) -> tuple[CardSession, Card]:
    now = rt.clock()
    if found is None:
        raise SessionInvalid()
    row, card, org = found
    _check_live(row, card, org, now, client_address=client_address, purpose=purpose)
    assert card is not None and org is not None
    row.last_used_at = now
    row.idle_expires_at = _idle_until(row, policy_of(org), now)
    return row, card


def _check_live(
    row: CardSession | SessionRow,
    card: Card | CardRow | None,
    org: Organisation | OrganisationRow | None,
    now: datetime,
    *,
    client_address: str | None,
    purpose: str | None,
) -> None:
    """SessionInvalid (or NetworkNotAllowed) unless the session may be used now; the same
    checks for the ORM rows and for the plain ones."""
    if now >= row.expires_at or now >= row.idle_expires_at:
        raise SessionInvalid("The session has expired; sign in again.")  # purged by maintenance
    if purpose is not None and row.purpose != purpose:
        raise SessionInvalid("This session cannot be used for that.")
    if card is None or card.status != CardStatus.ACTIVE:
        raise SessionInvalid("The card can no longer be used; sign in again.")
    assert org is not None
    network.check_client(org, client_address)


def _idle_until(
    row: CardSession | SessionRow, policy: OrganisationPolicy, now: datetime
) -> datetime:
    return min(now + timedelta(minutes=policy.session_idle_minutes), row.expires_at)


# The same lookup as plain rows (Core, no ORM objects), for the signature's hot path: the
# session's columns, then its card's and its acting organisation's (None when gone).
_ROW_COLUMNS = (
    columns_of(table_of(CardSession), SessionRow),
    columns_of(table_of(Card), CardRow),
    columns_of(table_of(Organisation), OrganisationRow),
)
_ROWS_BY_TOKEN = (
    select(*_ROW_COLUMNS[0], *_ROW_COLUMNS[1], *_ROW_COLUMNS[2])
    .select_from(table_of(CardSession))
    .outerjoin(Card, Card.id == CardSession.card_id)
    .outerjoin(
        Organisation,
        Organisation.id
        == func.coalesce(CardSession.acting_organisation_id, CardSession.organisation_id),
    )
    .where(CardSession.token_hash == bindparam("token_hash"))
    .with_for_update(of=table_of(CardSession))
)
_ROW_SPLIT = (len(_ROW_COLUMNS[0]), len(_ROW_COLUMNS[0]) + len(_ROW_COLUMNS[1]))


def use_row(
    conn: Connection, rt: Runtime, token: str, *, client_address: str | None
) -> tuple[SessionRow, CardRow]:
    """``use`` without the ORM, on the connection of the caller's write transaction: the
    session's row locked, checked and its idle timer restarted with one UPDATE (the relay's
    ``TOUCH_SESSION``); SessionInvalid otherwise."""
    found = conn.execute(_ROWS_BY_TOKEN, {"token_hash": token_hash(token)}).first()
    if found is None:
        raise SessionInvalid()
    first, second = _ROW_SPLIT
    row = SessionRow(*found[:first])
    card = CardRow(*found[first:second]) if found[first] is not None else None
    org = OrganisationRow(*found[second:]) if found[second] is not None else None
    now = rt.clock()
    _check_live(row, card, org, now, client_address=client_address, purpose=None)
    assert card is not None and org is not None
    idle = _idle_until(row, org.parsed_policy, now)
    conn.execute(TOUCH_SESSION, {"where_session": row.id, "now": now, "idle": idle})
    return row, card


class SessionOwner(Protocol):
    """What :func:`owner` reads of a card session: the ORM row or the relay's plain one."""

    @property
    def purpose(self) -> str:
        """``holder`` or ``ra``."""

    @property
    def person_id(self) -> str:
        """Whose session it is."""


def owner(actor: Actor, row: SessionOwner) -> Actor:
    """Who acts in a card session, for the audit trail: its RA or holder, not the caller's
    unauthenticated request (whose address and request id are kept)."""
    prefix = "ra" if row.purpose == "ra" else "holder"
    return Actor(
        ref=f"{prefix}:{row.person_id}",
        display=f"{prefix} {row.person_id}",
        client_address=actor.client_address,
        request_id=actor.request_id,
    )


def _record(
    session: Session,
    rt: Runtime,
    actor: Actor,
    row: CardSession,
    action: AuditAction,
    organisation_id: str,
    details: JsonObject,
) -> None:
    """An audit event of what the session's owner did (``owner``), in ``organisation_id``."""
    audit.record(
        session,
        rt,
        owner(actor, row),
        action=action,
        organisation_id=organisation_id,
        person_id=row.person_id,
        card_id=row.card_id,
        details=details,
    )


def logout(rt: Runtime, actor: Actor, token: str | None, *, session_id: str | None = None) -> None:
    """End a card session (audited); raises SessionInvalid if it has already ended."""
    with transaction(rt.db) as session:
        if session_id is not None:
            row = session.get(CardSession, session_id)
        else:
            row = session.scalar(
                select(CardSession).where(CardSession.token_hash == token_hash(token or ""))
            )
        if row is None:
            raise SessionInvalid()
        session.delete(row)
        details: JsonObject = {"session": row.id, "why": "logout"}
        _record(session, rt, actor, row, AuditAction.SESSION_CLOSED, row.organisation_id, details)


def purge_expired(rt: Runtime) -> int:
    """Delete sessions past their expiry (their wraps are useless without SK anyway)."""
    return purge_past_expiry(rt, CardSession)


def purge_past_expiry(rt: Runtime, table: type[CardSession] | type[WebSession]) -> int:
    """Delete a session table's rows past either expiry, absolute or idle; how many (card
    and web sessions end the same way)."""
    now = rt.clock()
    with transaction(rt.db) as session:
        result = session.execute(
            delete(table).where((table.expires_at <= now) | (table.idle_expires_at <= now))
        )
    return int(getattr(result, "rowcount", 0) or 0)


def ra_roles(
    session: Session, person_id: str, organisation_id: str
) -> list[tuple[Organisation, RaRole]]:
    """The RA roles a person holds in one organisation: the one a sign-in is for (chosen
    at sign-in, or the only one that admitted it). An RA session acts there and nowhere
    else: another organisation's roles need a sign-in to it (its networks, its factors)."""
    rows = session.execute(
        select(Organisation, RaRoleGrant.role)
        .join(RaRoleGrant, RaRoleGrant.organisation_id == Organisation.id)
        .where(RaRoleGrant.person_id == person_id, Organisation.id == organisation_id)
        .order_by(Organisation.code, RaRoleGrant.role)
    )
    return [(org, role) for org, role in rows]


def select_role(
    rt: Runtime,
    actor: Actor,
    token: str | None,
    *,
    org_code: str,
    role: str,
    session_id: str | None = None,
) -> None:
    """An RA acts in one organisation at a time, under one of their roles there.

    Raises PermissionDenied when the RA has no such role, and the card session's errors
    (expired, wrong purpose) or the organisation's network refusal.
    """
    with transaction(rt.db) as session:
        if session_id is not None:
            row, _card = use_id(
                session, rt, session_id, client_address=actor.client_address, purpose="ra"
            )
        else:
            row, _card = use(
                session, rt, token or "", client_address=actor.client_address, purpose="ra"
            )
        match = [
            (o, r)
            for o, r in ra_roles(session, row.person_id, row.organisation_id)
            if o.code == org_code.strip().upper() and r == role
        ]
        if not match:
            raise PermissionDenied("You do not have that RA role.")
        org = match[0][0]
        network.check_client(org, actor.client_address)
        row.acting_organisation_id, row.acting_role = org.id, match[0][1]
        _record(session, rt, actor, row, AuditAction.RA_ROLE_SELECTED, org.id, {"role": role})


def require_role(
    session: Session,
    rt: Runtime,
    token: str | None,
    *,
    client_address: str | None,
    roles: tuple[str, ...],
    session_id: str | None = None,
) -> CardSession:
    """The RA session, if its chosen role is one of ``roles`` and still granted."""
    if session_id is not None:
        row, _card = use_id(session, rt, session_id, client_address=client_address, purpose="ra")
    else:
        row, _card = use(session, rt, token or "", client_address=client_address, purpose="ra")
    if row.acting_organisation_id is None or row.acting_role not in roles:
        raise PermissionDenied("Choose an RA role that allows this first.")
    if row.acting_organisation_id != row.organisation_id:  # never another organisation's
        raise PermissionDenied("Sign in to that organisation to act there.")
    if not role_grants.holds(session, row.person_id, row.acting_organisation_id, row.acting_role):
        raise PermissionDenied("Your RA role has been withdrawn.")
    return row


def get_by_id(session: Session, session_id: str) -> CardSession:
    """The card session with this id; raises NotFound."""
    row = session.get(CardSession, session_id)
    if row is None:
        raise NotFound("There is no such session.")
    return row


def status(rt: Runtime, token: str, *, client_address: str | None) -> dict[str, object]:
    """The session's card, holder and expiry; raises SessionInvalid."""
    with transaction(rt.db) as session:
        row, card = use(session, rt, token, client_address=client_address)
        org = session.get(Organisation, row.organisation_id)
        acting = (
            session.get(Organisation, row.acting_organisation_id)
            if row.acting_organisation_id
            else None
        )
        assert org is not None
        return {
            "card_serial": card.serial,
            "status": card.status,
            "purpose": row.purpose,
            "method": row.method,
            "organisation": org.code,
            "acting_organisation": acting.code if acting else None,
            "acting_role": row.acting_role,
            "expires_at": row.expires_at,
            "idle_expires_at": row.idle_expires_at,
        }
