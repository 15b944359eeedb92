"""Readiness checks."""

from __future__ import annotations

from sqlalchemy import text

from cardvault.errors import Unavailable
from cardvault.services.audit.anchor import anchor_writer
from cardvault.services.system.runtime import Runtime


def database_status(rt: Runtime) -> str:
    """``ok`` if the database answers; raises Unavailable otherwise."""
    try:
        with rt.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        raise Unavailable("The database does not answer.") from exc
    return "ok"


def audit_anchor_status(rt: Runtime) -> str:
    """'ok' while signed heads can be anchored; else AnchorUnavailable (audited operations
    are refused meanwhile, so the instance is not ready)."""
    return anchor_writer(rt).status()
