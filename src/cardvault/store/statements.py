"""Counting what a unit of work sends to the database: statements and transactions.

The hot path's cost is mostly per statement and per transaction (issue 16), so
``bench/auth.py`` prints these counts for one sign-in and one signature, and a test pins
them from above so that a regression fails instead of showing up as a slower benchmark.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, event


@dataclass
class StatementCount:
    """What was sent while counting: SQL statements (a SQLite ``BEGIN``, which the driver
    sends for us on PostgreSQL, is a transaction rather than a statement) and the
    transactions begun."""

    statements: list[str] = field(default_factory=list)
    transactions: int = 0

    def __str__(self) -> str:
        return f"{len(self.statements)} statements in {self.transactions} transactions"


@contextmanager
def counted(engine: Engine) -> Iterator[StatementCount]:
    """Count what ``engine``'s connections send until the block ends (every thread: count
    only where nothing else uses the engine meanwhile)."""
    count = StatementCount()

    def statement(_c: Any, _cur: Any, sql: str, _p: Any, _ctx: Any, _many: bool) -> None:
        if not sql.startswith("BEGIN"):
            count.statements.append(sql)

    def begun(_conn: Any) -> None:
        count.transactions += 1

    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "begin", begun)
    try:
        yield count
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "begin", begun)
