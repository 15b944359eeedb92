"""Liveness and readiness (DESIGN §4, revised; docs/operator/monitoring.md).

An instance is *ready* when it can do its work: the database answers and takes writes (a
standby that has not been promoted answers but refuses them), the master key provider is
unsealed, Redis answers when one is configured, and the audit anchor takes lines (card
operations fail closed without it). Each check is run on every ``/readyz``, quickly, and a
failing one is named with the reason, so that an operator reading the load balancer's
answer knows what to repair.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from cardvault.errors import CardvaultError, Unavailable
from cardvault.services.audit.anchor import anchor_writer
from cardvault.services.system.runtime import Runtime, keystore_for

#: a write that changes nothing, rolled back: it proves the database takes writes (a hot
#: standby refuses it: "cannot execute UPDATE in a read-only transaction")
_WRITE_PROBE = text("UPDATE alembic_version SET version_num = version_num")
_SEAL_PROBE = b"cardvault readiness probe"
#: how long /readyz waits for Redis: a load balancer probes every few seconds
REDIS_TIMEOUT_SECONDS = 0.5


@dataclass(frozen=True, kw_only=True)
class Check:
    """One readiness check: its name, whether it passed, and why not."""

    name: str
    ok: bool
    #: why it failed (no secrets: the reason an operator acts on), or None
    problem: str | None = None


@dataclass(frozen=True, kw_only=True)
class Readiness:
    """The result of every readiness check."""

    checks: tuple[Check, ...]
    #: failing checks that do not make the instance unready (Redis, if so configured)
    tolerated: frozenset[str] = frozenset()

    @property
    def failing(self) -> tuple[str, ...]:
        """The names of the checks that failed."""
        return tuple(c.name for c in self.checks if not c.ok)

    @property
    def ready(self) -> bool:
        """Ready unless a check failed that is not tolerated."""
        return not (set(self.failing) - self.tolerated)


def readiness(rt: Runtime) -> Readiness:
    """Run every check (none stops the others) and say which failed."""
    probes: list[tuple[str, Callable[[Runtime], None]]] = [
        ("database", _database),
        ("key_provider", _key_provider),
        ("audit_anchor", _audit_anchor),
    ]
    if rt.settings.redis_url:
        probes.append(("redis", _redis))
    checks = tuple(_run(name, probe, rt) for name, probe in probes)
    tolerated = frozenset() if rt.settings.ready_requires_redis else frozenset({"redis"})
    return Readiness(checks=checks, tolerated=tolerated)


def _run(name: str, probe: Callable[[Runtime], None], rt: Runtime) -> Check:
    try:
        probe(rt)
    except CardvaultError as exc:
        return Check(name=name, ok=False, problem=exc.message)
    except Exception as exc:  # a probe must answer, whatever broke underneath
        return Check(name=name, ok=False, problem=_describe(exc))
    return Check(name=name, ok=True)


def _describe(exc: BaseException) -> str:
    """The first line of the underlying error, without URLs (they may carry a password)."""
    first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    words = [w for w in (first[0] if first else type(exc).__name__).split() if "://" not in w]
    return " ".join(words)[:300] or type(exc).__name__


def _database(rt: Runtime) -> None:
    with rt.engine.connect() as conn:
        try:
            conn.execute(_WRITE_PROBE)
        finally:
            conn.rollback()


def _key_provider(rt: Runtime) -> None:
    """Sealed since this process started (``cardvault seal``) is not ready: the instance would
    not start again; and the key in hand must still seal and open (an HSM's session)."""
    if keystore_for(rt.settings).is_sealed():
        raise Unavailable(
            "The master key provider is sealed (cardvault seal); this instance would not "
            "start again.",
            remedy="Run `cardvault unseal` with enough shares.",
        )
    blob = rt.master_key.seal(_SEAL_PROBE, aad=_SEAL_PROBE)
    rt.master_key.open(blob, aad=_SEAL_PROBE)


def _audit_anchor(rt: Runtime) -> None:
    anchor_writer(rt).status()


def _redis(rt: Runtime) -> None:
    client: Any = rt.memo(("readiness-redis", rt.settings.redis_url), lambda: _redis_client(rt))
    client.ping()


def _redis_client(rt: Runtime) -> Any:
    import redis

    assert rt.settings.redis_url is not None
    return redis.Redis.from_url(
        rt.settings.redis_url,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
    )


def database_status(rt: Runtime) -> str:
    """``ok`` if the database answers; raises Unavailable otherwise."""
    try:
        with rt.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        raise Unavailable("The database does not answer.") from exc
    return "ok"


def audit_anchor_status(rt: Runtime) -> str:
    """'ok' while signed heads can be anchored; else AnchorUnavailable (audited operations
    are refused meanwhile, so the instance is not ready)."""
    return anchor_writer(rt).status()
