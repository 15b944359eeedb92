"""store.errors.is_unavailable: which real driver errors mean "the database cannot now"
(a 503 the client may retry) and which mean a wrong statement (a 500)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from tests.support.databases import PG_URL

from cardvault.store import db
from cardvault.store.errors import is_unavailable


def _run(engine: Engine, statements: tuple[str, ...]) -> None:
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))


def _error_of(url: str, *statements: str) -> DBAPIError:
    engine = db.make_engine(url)
    try:
        with pytest.raises(DBAPIError) as raised:
            _run(engine, statements)
    finally:
        engine.dispose()
    return raised.value


def test_a_missing_table_on_sqlite_is_a_wrong_statement_not_an_outage(tmp_path: Path) -> None:
    assert not is_unavailable(_error_of(f"sqlite:///{tmp_path / 'x.db'}", "SELECT * FROM nope"))


def test_a_postgresql_server_that_does_not_answer_is_unavailable() -> None:
    assert is_unavailable(
        _error_of("postgresql://postgres@127.0.0.1:9/test?connect_timeout=2", "SELECT 1")
    )


@pytest.mark.postgres
def test_a_standby_refusing_writes_is_unavailable_and_a_syntax_error_is_not() -> None:
    read_only = _error_of(PG_URL, "SET TRANSACTION READ ONLY", "CREATE TEMPORARY TABLE t (x int)")
    assert getattr(read_only.orig, "sqlstate", None) == "25006"
    assert is_unavailable(read_only)
    assert not is_unavailable(_error_of(PG_URL, "SELEC 1"))
