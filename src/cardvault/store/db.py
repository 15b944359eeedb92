"""Engines, sessions and migrations for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from cardvault.errors import NotSetUp
from cardvault.store import sqlite_writers

MIGRATIONS = Path(__file__).parent / "migrations"
_SNAPSHOT = sqlite_writers.SNAPSHOT
_SQLITE_TIMEOUT = 30
_session_hooks: set[tuple[str, Callable[..., object]]] = set()
_session_hooks_lock = threading.Lock()


class DatabaseNewer(NotSetUp):
    """The database schema is newer than this version of cardvault."""

    code = "database_newer"


class DatabaseNotMigrated(NotSetUp):
    """The database schema is older than this version: ``cardvault db upgrade``."""

    code = "database_not_migrated"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """One engine per process; SQLite gets WAL, foreign keys and a busy timeout."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": _SQLITE_TIMEOUT}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        sqlite_writers.install(engine, _SQLITE_TIMEOUT)  # BEGIN IMMEDIATE for writers only
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # let SQLAlchemy, not the driver, decide when transactions begin (see sqlite_writers)
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def snapshot_options(engine: Engine) -> dict[str, str | bool]:
    """Execution options for a long read-only transaction (an audit verification) that must
    see the database as of one moment while the service goes on writing: REPEATABLE READ
    on PostgreSQL, a deferred (reader) transaction on SQLite."""
    if engine.dialect.name == "postgresql":
        return {"isolation_level": "REPEATABLE READ"}
    return {_SNAPSHOT: True}


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def reading(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A unit of work that only reads: on SQLite it takes no write lock (a deferred
    transaction on one WAL snapshot). It must not write."""
    with factory() as session:
        session.connection(execution_options={sqlite_writers.READ: True})
        yield session


@contextmanager
def reading_rows(engine: Engine) -> Iterator[Connection]:
    """``reading`` without the ORM, for a hot path that reads plain rows with Core (the
    PC/SC relay's snapshot): no Session to build and close. It must not write."""
    with engine.connect() as conn:
        conn.execution_options(**{sqlite_writers.READ: True})
        yield conn


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """The unit of work: commit on success, roll back on any exception."""
    with factory() as session, session.begin():
        yield session


def on_every_session(*hooks: tuple[str, Callable[..., object]]) -> None:
    """Listen to an event of every Session, once per process however often this is called:
    callers ask on first use, not at import (no side effects there), and a listener added
    twice would run twice. The usual call, once all are listening, takes no lock."""
    if _session_hooks.issuperset(hooks):
        return
    with _session_hooks_lock:
        for hook in hooks:
            if hook not in _session_hooks:
                event.listen(Session, *hook)
                _session_hooks.add(hook)


def without_flush(session: Session) -> None:
    """This transaction's commit need not wait for the WAL to reach the disk (PostgreSQL's
    ``synchronous_commit = off``, for this transaction only; SQLite in WAL mode with
    ``synchronous=NORMAL`` does not wait anyway).

    Only for a reservation whose outcome is committed later with the usual durability: it
    is visible to every other transaction at once, and the WAL is written in order, so the
    later commit makes it durable too. Nobody learns the outcome before that later commit,
    so a crash in between loses nothing that anyone saw."""
    if session.get_bind().dialect.name == "postgresql":
        session.connection().exec_driver_sql("SET LOCAL synchronous_commit TO OFF")


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    head = script.get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Bring the schema to head; refuse a database written by a newer cardvault."""
    check_not_newer(engine)
    cfg = alembic_config(str(engine.url.render_as_string(hide_password=False)))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def check_not_newer(engine: Engine) -> None:
    current = current_revision(engine)
    if current is None:
        return
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    try:
        known = script.get_revision(current) is not None
    except CommandError:  # alembic raises for a revision id it has never seen
        known = False
    if not known:
        raise DatabaseNewer(
            f"The database is at migration {current}, which this version of cardvault "
            "does not know: it was written by a newer cardvault.",
            remedy="Run the newer cardvault, or restore a backup made for this version.",
        )


def check_current(engine: Engine) -> None:
    """At start-up the schema must be exactly at head."""
    check_not_newer(engine)
    if current_revision(engine) != head_revision():
        raise DatabaseNotMigrated(
            "The database schema is not up to date.",
            remedy="Run `cardvault init` (or `cardvault db upgrade`) first.",
        )
