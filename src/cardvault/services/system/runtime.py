"""The composition of what services need: settings, database, master key, clock.

Built once per process by ``open_runtime`` (the CLI and ``create_app`` call it); tests build
their own with their own settings, database URL and clock.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from cardvault.config import Settings
from cardvault.errors import InvalidInput
from cardvault.keystore.local import LocalKeyStore, default_runtime_dir
from cardvault.keystore.pkcs11 import Pkcs11Config, Pkcs11KeyStore
from cardvault.keystore.provider import KeyStore, MasterKey
from cardvault.services.signin.kdf_gate import KdfGate
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
        """The actor for an operator at the command line."""
        return cls(ref=f"cli:{name}", display=f"operator {name}")

    @classmethod
    def system(cls) -> Actor:
        """The actor for what the service does by itself."""
        return cls(ref="system", display="cardvault")

    def as_holder(self, person_id: str) -> Actor:
        """The same request recorded as the holder's own act: whoever typed the passcode."""
        return replace(self, ref=f"holder:{person_id}")


@dataclass(kw_only=True)
class Runtime:
    """What every service call needs: settings, database, master key, clock and caches."""

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
        """The data directory."""
        return self.settings.data_dir

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()


def keystore_for(settings: Settings) -> KeyStore:
    """The configured master-key provider's store for this data directory."""
    if settings.key_provider == "pkcs11":
        return Pkcs11KeyStore(settings.keys_dir, pkcs11_config(settings))
    return local_keystore(settings)


def local_keystore(settings: Settings) -> LocalKeyStore:
    """The local provider's store, for custody commands only it has (split, unseal, seal)."""
    if settings.key_provider != "local":
        raise InvalidInput(
            "The master key is inside the HSM (the pkcs11 key provider): it is never split "
            "or unsealed by cardvault; the HSM's own custody applies."
        )
    return LocalKeyStore(settings.keys_dir, default_runtime_dir(settings.data_dir))


def pkcs11_config(settings: Settings) -> Pkcs11Config:
    """The PKCS#11 provider's settings (the module and token are set when it is chosen)."""
    assert settings.pkcs11_module is not None and settings.pkcs11_token_label is not None
    return Pkcs11Config(
        module=settings.pkcs11_module,
        token_label=settings.pkcs11_token_label,
        pin=_pkcs11_pin(settings),
        key_label=settings.pkcs11_key_label,
    )


def hsm_config(
    settings: Settings, *, key_label: str, token_label: str | None = None
) -> Pkcs11Config:
    """The PKCS#11 settings for another key in the HSM (the issuing CA's), whichever
    provider holds the master key; InvalidInput naming what is not set."""
    token = token_label or settings.pkcs11_token_label
    missing = [
        name
        for name, value in (
            ("CARDVAULT_PKCS11_MODULE", settings.pkcs11_module),
            ("CARDVAULT_PKCS11_TOKEN_LABEL", token),
            ("CARDVAULT_PKCS11_PIN_FILE", settings.pkcs11_pin_file or settings.pkcs11_pin),
        )
        if value is None
    ]
    if missing or settings.pkcs11_module is None or token is None:
        raise InvalidInput(
            f"A key in the HSM needs the PKCS#11 settings: {', '.join(missing)} is not set.",
            remedy="Set them as for the pkcs11 key provider (docs/operator/pki.md).",
        )
    return Pkcs11Config(
        module=settings.pkcs11_module,
        token_label=token,
        pin=_pkcs11_pin(settings),
        key_label=key_label,
    )


def _pkcs11_pin(settings: Settings) -> str:
    if settings.pkcs11_pin_file is None:
        assert settings.pkcs11_pin is not None
        return settings.pkcs11_pin
    try:
        return settings.pkcs11_pin_file.read_text().strip()
    except OSError as exc:
        raise InvalidInput(
            f"The PKCS#11 PIN file {settings.pkcs11_pin_file} cannot be read ({exc.strerror})."
        ) from exc


def skewed(clock: Clock, seconds: int) -> Clock:
    """The clock, ``seconds`` off (CLOCK_OFFSET_SECONDS): how the fault tests give one
    instance of several a wrong clock without touching the machine's."""
    if not seconds:
        return clock
    offset = timedelta(seconds=seconds)
    return lambda: clock() + offset


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
        clock=skewed(clock, settings.clock_offset_seconds),
        kdf_gate=KdfGate(settings.kdf_concurrency, settings.kdf_queue),
    )
