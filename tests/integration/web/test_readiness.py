"""/healthz and /readyz over real HTTP, each readiness check broken for real: a database
that does not answer or refuses writes, a sealed key provider, Redis on a closed port, an
audit anchor on a read-only file system or a nearly full disk."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from tests.support.live_server import free_port
from tests.support.redis_server import DEAD_REDIS_URL, REDIS_URL, redis_or_skip

from cardvault.services.system.runtime import Runtime, local_keystore
from cardvault.store import db


@pytest.fixture
def http(live_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_url, timeout=30) as client:
        yield client


def _ready(http: httpx.Client, status: int) -> dict[str, object]:
    answer = http.get("/readyz")
    assert answer.status_code == status, answer.text
    body: dict[str, object] = answer.json()
    return body


def _failing(http: httpx.Client) -> dict[str, str]:
    """The failing checks of a 503, each with its problem."""
    body = _ready(http, 503)
    assert body["status"] == "not_ready"
    checks = body["checks"]
    assert isinstance(checks, dict)
    failing = {name: c["problem"] for name, c in checks.items() if not c["ok"]}
    assert sorted(failing) == body["failing"]
    return failing


def _configure(rt: Runtime, **changes: object) -> None:
    rt.settings = rt.settings.model_copy(update=changes)


def test_alive_and_ready_name_every_check(http: httpx.Client, rt: Runtime) -> None:
    redis_or_skip()
    _configure(rt, redis_url=REDIS_URL)
    assert http.get("/healthz").json() == {"status": "alive"}
    body = _ready(http, 200)
    assert body == {
        "status": "ready",
        "failing": [],
        "checks": {
            "database": {"ok": True},
            "key_provider": {"ok": True},
            "audit_anchor": {"ok": True},
            "redis": {"ok": True},
        },
    }


def test_a_database_that_does_not_answer_is_not_ready(http: httpx.Client, rt: Runtime) -> None:
    working = rt.engine
    rt.engine = db.make_engine(f"postgresql://cardvault@127.0.0.1:{free_port()}/gone")
    try:
        failing = _failing(http)
    finally:
        rt.engine.dispose()
        rt.engine = working
    assert list(failing) == ["database"]
    assert "refused" in failing["database"].lower()
    assert "postgresql://" not in failing["database"]
    _ready(http, 200)


def test_a_database_that_refuses_writes_is_not_ready(http: httpx.Client, rt: Runtime) -> None:
    """A hot standby answers reads and refuses writes: not ready until it is promoted."""
    working = rt.engine
    url = rt.settings.resolved_database_url
    if working.dialect.name == "sqlite":
        path = url.removeprefix("sqlite:///")
        rt.engine = db.make_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
        expected = "attempt to write a readonly database"
    else:  # what a standby's sessions are: read-only transactions
        read_only = {"options": "-c default_transaction_read_only=on"}
        rt.engine = db.make_engine(url, connect_args=read_only)
        expected = "cannot execute UPDATE in a read-only transaction"
    try:
        with rt.engine.connect() as conn:  # it still answers reads
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
        failing = _failing(http)
    finally:
        rt.engine.dispose()
        rt.engine = working
    assert list(failing) == ["database"]
    assert expected in failing["database"]
    _ready(http, 200)


def test_a_sealed_key_provider_is_not_ready_until_unsealed(http: httpx.Client, rt: Runtime) -> None:
    store = local_keystore(rt.settings)
    shares = store.split(shares=3, threshold=2)  # the key leaves the disk: sealed
    try:
        failing = _failing(http)
        assert list(failing) == ["key_provider"]
        assert "sealed" in failing["key_provider"]
        store.unseal(shares[1:])
        _ready(http, 200)
    finally:
        store.seal()


def test_redis_that_does_not_answer_is_not_ready_unless_tolerated(
    http: httpx.Client, rt: Runtime
) -> None:
    _configure(rt, redis_url=DEAD_REDIS_URL)
    failing = _failing(http)
    assert list(failing) == ["redis"]
    assert "refused" in failing["redis"].lower()

    _configure(rt, ready_requires_redis=False)
    body = _ready(http, 200)
    assert body["status"] == "ready"
    assert body["failing"] == ["redis"]


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A read-only file system (a tmpfs mounted ro): what a failed disk remounts to."""
    path = tmp_path / "ro"
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "cardvault-test", str(path)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a read-only file system here: {mounted.stderr.decode()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def test_an_anchor_on_a_read_only_file_system_is_not_ready(
    http: httpx.Client, rt: Runtime, read_only_dir: Path
) -> None:
    _configure(rt, audit_anchor_file=read_only_dir / "anchors.jsonl")
    rt._memo.pop("audit-anchor", None)  # the writer is made for the anchor configured
    failing = _failing(http)
    assert list(failing) == ["audit_anchor"]
    assert "read-only file system" in failing["audit_anchor"]


def test_an_anchor_disk_nearly_full_is_not_ready(http: httpx.Client, rt: Runtime) -> None:
    _configure(rt, audit_anchor_min_free_mib=1024 * 1024)  # 1 TiB free wanted
    rt._memo.pop("audit-anchor", None)
    failing = _failing(http)
    assert list(failing) == ["audit_anchor"]
    assert "is full (or nearly)" in failing["audit_anchor"]
