"""The ``cli`` fixture: the real ``cardvault`` command on the test's database and keys."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.support.cli import Cli

from cardvault.config import Settings
from cardvault.services.system.runtime import Runtime


@pytest.fixture
def cli(settings: Settings, rt: Runtime, database_url: str) -> Iterator[Cli]:
    """A migrated database and the session's keys and CA (no TLS, no demo data)."""
    runner = Cli(data_dir=settings.data_dir, database_url=database_url)
    yield runner
    runner.forget_unsealed_key()
