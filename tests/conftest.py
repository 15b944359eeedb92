"""Fixtures shared by every tier: settings, a data directory, databases, the runtime.

Every test that asks for ``rt`` runs twice: on SQLite and on PostgreSQL (the local server at
127.0.0.1:5432, or ``CARDVAULT_TEST_POSTGRES_URL``). Without a reachable PostgreSQL the
PostgreSQL half is skipped, unless ``CARDVAULT_TEST_REQUIRE_POSTGRES`` is set (CI sets it).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from cardvault.config import Settings
from cardvault.services.audit import signing_key as audit_key
from cardvault.services.pki import ca
from cardvault.services.system.runtime import Actor, Runtime, keystore_for, open_runtime
from cardvault.services.transport import keys as transport_keys
from tests.support import softhsm
from tests.support.databases import (
    NO_RATE_LIMITS,
    PG_URL,
    REQUIRE_PG,
    TEST_ARGON2,
    fresh_postgres_database,
    postgres_reachable,
)

# Property tests check behaviour, not speed: on a loaded CI machine one example may take
# longer than Hypothesis's default 200 ms deadline, which would fail a correct test.
hypothesis_settings.register_profile("cardvault", deadline=None)
hypothesis_settings.load_profile("cardvault")

PG_AVAILABLE = postgres_reachable()


@pytest.fixture(scope="session")
def key_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Keys, CA and TLS made once per session (RSA-3072 CA generation is slow)."""
    root = tmp_path_factory.mktemp("template")
    settings = Settings(data_dir=root)
    master = keystore_for(settings).create()
    audit_key.create_audit_key(settings.keys_dir, master)
    transport_keys.create(settings.keys_dir, master)
    transport_keys.create(settings.keys_dir, master, ecdh=True)
    ca.create(root, master, common_name="cardvault Test CA", organisation="cardvault tests")
    return root


@pytest.fixture(scope="session")
def hsm(tmp_path_factory: pytest.TempPathFactory) -> softhsm.SoftHsm:
    """SoftHSM2 tokens for this test process (made once: SoftHSM reads its configuration
    when the library is first loaded); tests keep apart by key label."""
    return softhsm.start(tmp_path_factory.mktemp("softhsm"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cardvault.db'}"
        return
    if not PG_AVAILABLE:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL is required but {PG_URL} does not answer")
        pytest.skip("PostgreSQL is not reachable")
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def settings(tmp_path: Path, key_template: Path, database_url: str) -> Settings:
    data = tmp_path / "data"
    shutil.copytree(key_template, data)
    options = {**TEST_ARGON2, **NO_RATE_LIMITS}
    return Settings(data_dir=data, database_url=database_url, **options)  # type: ignore[arg-type]


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    runtime = open_runtime(settings, migrate=True)
    yield runtime
    runtime.close()


@pytest.fixture
def operator() -> Actor:
    return Actor.operator("tester")


@pytest.fixture
def live_url(rt: Runtime) -> Iterator[str]:
    """The whole app served over real HTTP on localhost (a free port)."""
    from cardvault.web.app import create_app
    from tests.support.live_server import serve

    with serve(create_app(rt)) as url:
        yield url


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The fault tier (``faults``) is opt-in: it runs only when ``-m`` names it, because it
    starts the whole reference topology (``make test`` runs it as a step of its own)."""
    if "faults" in (config.option.markexpr or ""):
        return
    kept = [item for item in items if item.get_closest_marker("faults") is None]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept
