"""Statements on RA role grants: who holds a role, and grants that wait for a second RA
manager (issue 19).

A pending request is decided once: two RA managers who approve (or one approves and one
refuses) at the same moment run the same conditional UPDATE, and exactly one of them finds
the row still pending. The requester is excluded in the statement itself, so no race lets
them approve their own request.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, Select, select, update
from sqlalchemy.orm import Session

from cardvault.domain.vocabulary import RaRole, RoleGrantStatus
from cardvault.store.models import RaRoleGrant, RoleGrantRequest


def grant_of(person_id: str, organisation_id: str, role: RaRole) -> Select[RaRoleGrant]:
    """The grant of ``role`` to the person in the organisation (one at most: the table's
    unique constraint)."""
    return select(RaRoleGrant).where(
        RaRoleGrant.person_id == person_id,
        RaRoleGrant.organisation_id == organisation_id,
        RaRoleGrant.role == role,
    )


def holds(
    conn: Session | Connection, person_id: str, organisation_id: str | None, role: RaRole | None
) -> bool:
    """Whether the person holds ``role`` in the organisation now (a session with no role
    chosen holds none): an RA session's role is checked again on every use, as it may have
    been withdrawn since it was chosen."""
    if organisation_id is None or role is None:
        return False
    query = grant_of(person_id, organisation_id, role).with_only_columns(RaRoleGrant.id)
    return conn.scalar(query) is not None


def decide(
    session: Session,
    request_id: str,
    *,
    organisation_id: str,
    status: RoleGrantStatus,
    by: str,
    now: datetime,
) -> bool:
    """Approve or refuse a pending request of this organisation made by someone else; True
    for exactly one of any number of concurrent callers."""
    won = session.scalar(
        update(RoleGrantRequest)
        .where(
            RoleGrantRequest.id == request_id,
            RoleGrantRequest.organisation_id == organisation_id,
            RoleGrantRequest.status == RoleGrantStatus.PENDING,
            RoleGrantRequest.requested_by != by,
        )
        .values(status=status, decided_by=by, decided_at=now)
        .returning(RoleGrantRequest.id)
    )
    return won is not None
