"""What the audit trail raises (DESIGN §3.7)."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from cardvault.errors import IntegrityError, InvalidInput, NotSetUp, Unavailable
from cardvault.store.errors import DatabaseUnavailable, is_unavailable


class AuditUnavailable(Unavailable):
    """An audit event or its signed head could not be written: nothing was done."""

    code = "audit_unavailable"


def audit_write_failed(exc: SQLAlchemyError, what: str) -> Unavailable:
    """The refusal for ``what`` (an event, a signed head) not written: a database that went
    away mid-transaction (a failover) is DatabaseUnavailable, whose Retry-After tells the
    client that trying again is safe, like any other statement of the request."""
    if isinstance(exc, DBAPIError) and is_unavailable(exc):
        return DatabaseUnavailable()
    return AuditUnavailable(
        f"{what} could not be written, so nothing was done.",
        remedy="Check the database; the operation can be retried once it is healthy.",
    )


class AnchorUnavailable(AuditUnavailable):
    """The anchor cannot take signed heads now, so no audited operation commits."""

    code = "audit_anchor_unavailable"


class AnchorWriteFailed(Unavailable):
    """The operation committed, but its signed heads could not be anchored afterwards."""

    code = "audit_anchor_failed"


class HeadSignatureInvalid(IntegrityError):
    """A chain's signed head does not verify under the audit key."""

    code = "audit_head_signature"


class AnchorsNotReadable(InvalidInput):
    """The anchors to verify against cannot be read (syslog, or a file that is missing)."""

    code = "audit_anchors_not_readable"


class AnchorsLost(IntegrityError):
    """The database holds signed heads but the anchor file is gone."""

    code = "audit_anchors_lost"


class AuditKeyMissing(NotSetUp):
    """The audit signing key is not in the data directory: ``cardvault init`` makes it."""

    code = "audit_key_missing"
