"""The composition of what services need: settings, database, master key, clock.

Built once per process by ``open_runtime`` (the CLI and ``create_app`` call it); tests build
their own with their own settings, database URL and clock.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from cardvault.config import Settings
from cardvault.keystore.local import LocalKeyStore, default_runtime_dir
from cardvault.keystore.provider import MasterKey
from cardvault.services.kdf_gate import KdfGate
from cardvault.store import db
from cardvault.store.types import new_id, utcnow

Clock = Callable[[], datetime]
T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class Actor:
    """Who is acting, for the audit trail: ``cli:<user>``, ``ra:<person id>``, ``holder:…``."""

    ref: str
    display: str
    request_id: str = field(default_factory=new_id)
    client_address: str | None = None

    @classmethod
    def operator(cls, name: str) -> Actor:
        return cls(ref=f"cli:{name}", display=f"operator {name}")

    @classmethod
    def system(cls) -> Actor:
        return cls(ref="system", display="cardvault")


@dataclass(kw_only=True)
class Runtime:
    settings: Settings
    engine: Engine
    db: sessionmaker[Session]
    master_key: MasterKey
    clock: Clock = utcnow
    kdf_gate: KdfGate = field(default_factory=KdfGate)
    _memo: dict[Hashable, Any] = field(default_factory=dict, repr=False)

    def memo(self, key: Hashable, load: Callable[[], T]) -> T:
        """Keys unsealed once per process (and again when their file changes)."""
        if key not in self._memo:
            self._memo[key] = load()
        value: T = self._memo[key]
        return value

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    def close(self) -> None:
        self.engine.dispose()


def keystore_for(settings: Settings) -> LocalKeyStore:
    return LocalKeyStore(settings.keys_dir, default_runtime_dir(settings.data_dir))


def open_runtime(settings: Settings, *, clock: Clock = utcnow, migrate: bool = False) -> Runtime:
    """Unseal, connect and check the schema; refuse to run sealed or on a stale schema."""
    master = keystore_for(settings).load()
    engine = db.make_engine(settings.resolved_database_url)
    try:
        if migrate:
            db.upgrade(engine)
        else:
            db.check_current(engine)
    except Exception:
        engine.dispose()
        raise
    return Runtime(
        settings=settings,
        engine=engine,
        db=db.session_factory(engine),
        master_key=master,
        clock=clock,
        kdf_gate=KdfGate(settings.kdf_concurrency, settings.kdf_queue),
    )
