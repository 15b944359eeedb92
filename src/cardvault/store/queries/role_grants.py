"""Atomic statements on role grants that wait for a second RA manager (issue 19).

A pending request is decided once: two RA managers who approve (or one approves and one
refuses) at the same moment run the same conditional UPDATE, and exactly one of them finds
the row still pending. The requester is excluded in the statement itself, so no race lets
them approve their own request.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from cardvault.domain.vocabulary import RoleGrantStatus
from cardvault.store.models import RoleGrantRequest


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
