"""What the store raises: the database could not be reached or would not write."""

from __future__ import annotations

import sqlite3
from dataclasses import field

from sqlalchemy.exc import DBAPIError, OperationalError

from cardvault.errors import Unavailable, error

#: SQLSTATEs that mean "this server cannot take the statement now" rather than "the statement
#: is wrong": a read-only transaction (a standby not yet promoted), an administrator's or a
#: crash shutdown, a server still starting (PostgreSQL's classes 25006, 57P0x)
_NOT_NOW = frozenset({"25006", "57P01", "57P02", "57P03"})


@error
class DatabaseUnavailable(Unavailable):
    """The database did not answer or would not write (stopped, failing over, locked): the
    request's transaction was rolled back, so trying again is safe."""

    code = "database_unavailable"
    message: str = field(
        default="The database is not available right now; nothing was changed. Try again.",
        init=False,
    )
    retry_after: int = 2


#: SQLite says OperationalError for a missing table too: only these messages mean "not now"
_SQLITE_NOT_NOW = ("database is locked", "unable to open", "disk i/o error")


def is_unavailable(exc: DBAPIError) -> bool:
    """Whether a driver error says the database could not do the work now (a lost
    connection, a shutdown, a standby, SQLite's lock timeout), not that the work was wrong."""
    if isinstance(exc.orig, sqlite3.Error):
        return any(words in str(exc.orig).lower() for words in _SQLITE_NOT_NOW)
    sqlstate = getattr(exc.orig, "sqlstate", None)
    return isinstance(exc, OperationalError) or exc.connection_invalidated or sqlstate in _NOT_NOW
