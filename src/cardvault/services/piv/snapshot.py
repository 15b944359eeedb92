"""What an APDU is computed from: session, link, card, applet and organisation, read at once.

Every check that can be made before the APDU runs is made here -- the session is the token's
and has not expired, the client is on an allowed network, the link belongs to the session and
has the right mode, the card may be used in that mode, an issuing RA still holds the role.
The relay commits only if nothing of it moved since (see relay.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from sqlalchemy import Connection, select

from cardvault.domain.org_policy import OrganisationPolicy
from cardvault.domain.vocabulary import CardStatus
from cardvault.errors import PermissionDenied
from cardvault.services.networks import allow_list as network
from cardvault.services.piv import issuance, statements
from cardvault.services.piv.errors import LinkClosed
from cardvault.services.piv.ports import Mode
from cardvault.services.signin import sessions as card_sessions
from cardvault.services.signin.errors import SessionInvalid
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.services.transport.errors import EnvelopeReplayed
from cardvault.store.db import reading_rows
from cardvault.store.models import CardSession
from cardvault.store.queries import role_grants
from cardvault.store.queries.organisations import OrganisationRow
from cardvault.store.queries.rows import CardRow, LinkRow, PivRow, SessionRow

__all__ = ["USABLE", "Snapshot", "take"]

#: the card statuses in which each kind of link works
USABLE = {
    Mode.USE: (CardStatus.ACTIVE,),
    Mode.ISSUANCE: (CardStatus.BLANK, CardStatus.ISSUED),
}


@dataclass(frozen=True, kw_only=True)
class Snapshot:
    """Everything one APDU needs, read in one read-only unit of work."""

    session: SessionRow
    link: LinkRow
    card: CardRow
    piv: PivRow
    organisation: OrganisationRow
    #: the organisation's policy, parsed
    policy: OrganisationPolicy


def take(
    rt: Runtime, actor: Actor, *, mode: Mode, token: str, link_id: str, jti: str | None = None
) -> Snapshot:
    """One read of everything, checked; SessionInvalid, LinkClosed, PermissionDenied, or
    EnvelopeReplayed when the request's channel ``jti`` was spent already."""
    params = {
        "token_hash": card_sessions.token_hash(token),
        "link_id": link_id,
        "jti": None if jti is None else jti[:100],
    }
    # Core, not the ORM: plain rows, no Session (rows.py); no write lock: the commit is the
    # one transaction
    with reading_rows(rt.engine) as conn:
        found = conn.execute(statements.SNAPSHOT, params).one_or_none()
        if found is None:
            _why_not_found(conn, token)
        row, link, piv, card, org, spent = _split(found)
        if mode is Mode.ISSUANCE:
            _check_issuer(conn, row)
    _check_live(rt, actor, row, org)
    if spent:
        raise EnvelopeReplayed("This request was already received once; it is refused.")
    if link.mode != mode.value or card.status not in USABLE[mode]:
        raise LinkClosed("This card can no longer be used here.")
    policy = org.parsed_policy
    return Snapshot(session=row, link=link, card=card, piv=piv, organisation=org, policy=policy)


_ENDS = tuple(
    itertools.accumulate(
        len(columns)
        for columns in (
            statements.SESSION_COLUMNS,
            statements.LINK_COLUMNS,
            statements.PIV_COLUMNS,
            statements.CARD_COLUMNS,
            statements.ORGANISATION_COLUMNS,
        )
    )
)


def _split(
    found: Sequence[Any],
) -> tuple[SessionRow, LinkRow, PivRow, CardRow, OrganisationRow, bool]:
    """The snapshot's result row as plain values (rows.py), and whether the jti was spent."""
    a, b, c, d, e = _ENDS
    return (
        SessionRow(*found[:a]),
        LinkRow(*found[a:b]),
        PivRow(*found[b:c]),
        CardRow(*found[c:d]),
        OrganisationRow(*found[d:e]),
        bool(found[e]),
    )


def _why_not_found(conn: Connection, token: str) -> NoReturn:
    hashed = card_sessions.token_hash(token)
    if conn.scalar(select(CardSession.id).where(CardSession.token_hash == hashed)) is None:
        raise SessionInvalid()
    raise LinkClosed("This card is no longer in the reader; start the connector again.")


def _check_live(rt: Runtime, actor: Actor, row: SessionRow, org: OrganisationRow) -> None:
    now = rt.clock()
    if now >= row.expires_at or now >= row.idle_expires_at:
        raise SessionInvalid("The session has expired; sign in again.")
    network.check_client(org, actor.client_address)


def _check_issuer(conn: Connection, row: SessionRow) -> None:
    """An issuance link needs an RA session whose issuing role is still granted."""
    if row.purpose != "ra" or row.acting_role not in issuance.ISSUERS:
        raise PermissionDenied("Choose an RA role that allows this first.")
    if not role_grants.holds(conn, row.person_id, row.acting_organisation_id, row.acting_role):
        raise PermissionDenied("Your RA role has been withdrawn.")
