"""SQLite transactions: readers take no lock, writers queue in the process (DESIGN §4).

SQLite allows one writer at a time. A transaction that writes begins ``BEGIN IMMEDIATE`` so
that read-then-write transactions serialise instead of failing at their first write. When
the lock is taken, SQLite's busy handler *sleeps* and retries -- 1, 2, 5, 10, 15, 20, 25 ms
and more -- so under load a waiting writer sleeps long after the lock was released, and
throughput falls as clients are added (issue 16: 65 % of the KDF ceiling at two clients,
56 % at four). Writers of one process therefore first queue on a lock of their own,
handed over as soon as the previous writer's COMMIT or ROLLBACK has returned; SQLite's busy
timeout still arbitrates between processes.

A read-only unit of work (``READ`` execution option, see ``store.db.reading``) begins a
deferred transaction: in WAL mode it reads one consistent snapshot without the write lock
and without keeping writers out.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import OperationalError

#: execution option: this transaction only reads (SQLite: a deferred BEGIN, no write lock)
READ = "cardvault_read"
#: execution option: a long consistent read (an audit verification); deferred too
SNAPSHOT = "cardvault_read_snapshot"
_HELD = "cardvault_writer"


def install(engine: Engine, timeout: float) -> None:
    """Make ``engine``'s transactions begin as described above."""
    writers = threading.Lock()
    dialect = engine.dialect
    commit, rollback = dialect.do_commit, dialect.do_rollback

    def begin(conn: Any) -> None:
        options = conn.get_execution_options()
        if options.get(SNAPSHOT) or options.get(READ):
            conn.exec_driver_sql("BEGIN")
            return
        if not writers.acquire(timeout=timeout):
            raise OperationalError("BEGIN IMMEDIATE", None, Exception("database is locked"))
        conn.connection.info[_HELD] = True
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            _release(conn.connection)
            raise

    def _release(fairy: Any) -> None:
        try:
            info = fairy.info
        except (AttributeError, NotImplementedError):  # a connection outside the pool
            return
        if info.pop(_HELD, False):
            writers.release()

    def do_commit(fairy: Any) -> None:
        try:
            commit(fairy)
        finally:
            _release(fairy)

    def do_rollback(fairy: Any) -> None:
        try:
            rollback(fairy)
        finally:
            _release(fairy)

    def on_checkin(_dbapi: Any, record: Any) -> None:
        # a connection returned without COMMIT or ROLLBACK (it was closed or invalidated)
        if record is not None and record.info.pop(_HELD, False):
            writers.release()

    dialect.do_commit = do_commit  # type: ignore[method-assign, assignment]
    dialect.do_rollback = do_rollback  # type: ignore[method-assign, assignment]
    event.listen(engine, "begin", begin)
    event.listen(engine, "checkin", on_checkin)
    event.listen(engine, "invalidate", lambda _d, record, _e: on_checkin(_d, record))
