"""The test databases and settings every tier shares: the PostgreSQL server, a fresh database
per test, and the fast KDF of the tests.

The server is the local one at 127.0.0.1:5432 (trust, database ``test``), or
``CARDVAULT_TEST_POSTGRES_URL``; ``CARDVAULT_TEST_REQUIRE_POSTGRES`` (CI sets it) turns a
missing server into a failure instead of a skip.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text

PG_URL = os.environ.get("CARDVAULT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_PG = bool(os.environ.get("CARDVAULT_TEST_REQUIRE_POSTGRES"))
#: Argon2id at its floor, allowed only with the test switch: a test derives keys many times
TEST_ARGON2 = {
    "argon2_time_cost": 1,
    "argon2_memory_kib": 64,
    "argon2_parallelism": 1,
    "insecure_test_kdf": True,
}
#: most tests sign in many times from one address within minutes; the rate-limit tests
#: (tests/integration/web/test_rate_limits.py) switch the limits on with their own settings
NO_RATE_LIMITS = {"rate_limits_enabled": False}


def _driver(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def postgres_reachable() -> bool:
    """Whether the test PostgreSQL server answers within two seconds."""
    engine = create_engine(_driver(PG_URL), connect_args={"connect_timeout": 2})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
    finally:
        engine.dispose()


@contextmanager
def fresh_postgres_database(prefix: str = "cvtest") -> Iterator[str]:
    """A new database, dropped afterwards: services own their transactions, so no rollback
    trick; yields its URL."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    admin = create_engine(_driver(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{PG_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
