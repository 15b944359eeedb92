"""Readiness checks."""

from __future__ import annotations

from sqlalchemy import text

from cardvault.errors import Unavailable
from cardvault.services.runtime import Runtime


def database_status(rt: Runtime) -> str:
    try:
        with rt.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        raise Unavailable("The database does not answer.") from exc
    return "ok"
