"""``cardvault backup`` → ``cardvault restore`` → unseal → sign in, through the real console
script, from each database onto the other (the format is portable); the restored audit
trail shows as a rollback against the anchors kept apart until it is acknowledged."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x25519
from tests.support import auth as a
from tests.support.cli import Cli
from tests.support.databases import (
    PG_URL,
    REQUIRE_PG,
    fresh_postgres_database,
    postgres_reachable,
)

from cardvault.config import Settings
from cardvault.domain.audit_anchor import ChainRolledBack
from cardvault.errors import ServiceSealed
from cardvault.services.audit import rollback
from cardvault.services.directory import registry as directory
from cardvault.services.signin.engine import Engine
from cardvault.services.system.runtime import Actor, Runtime, local_keystore, open_runtime


@pytest.fixture
def recipient(tmp_path: Path) -> tuple[Path, Path]:
    """The operator's backup key pair: X25519, PEM."""
    private = x25519.X25519PrivateKey.generate()
    public_path, private_path = tmp_path / "backup.pub.pem", tmp_path / "backup.key.pem"
    public_path.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    private_path.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return public_path, private_path


@pytest.fixture
def other_database(database_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of the other kind: SQLite's backup goes to PostgreSQL and back."""
    if database_url.startswith("postgresql"):
        yield f"sqlite:///{tmp_path / 'restored.db'}"
        return
    if not postgres_reachable():
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL is required but {PG_URL} does not answer")
        pytest.skip("PostgreSQL is not reachable")
    with fresh_postgres_database("cvrestore") as url:
        yield url


def test_backup_restore_unseal_and_sign_in_on_the_other_database(
    cli: Cli,
    rt: Runtime,
    settings: Settings,
    operator: Actor,
    recipient: tuple[Path, Path],
    other_database: str,
    tmp_path: Path,
) -> None:
    a.open_org(rt, operator)
    holder = a.holder(rt, operator)
    shares = local_keystore(settings).split(shares=3, threshold=2)  # production: sealed
    cli.run("unseal", "--shares-stdin", stdin="\n".join(shares[:2]) + "\n").ok()

    made = cli.run(
        "backup", "--to", str(tmp_path / "vault.cvbackup"), "--recipient", str(recipient[0])
    )
    made.ok()
    assert made.json["tables"]["cards"] == 1
    assert "keys/master.key" not in made.json["files"]
    assert "keys/master.json" in made.json["files"]
    assert "table cards: 1 rows" in made.stderr
    backup_bytes = (tmp_path / "vault.cvbackup").read_bytes()
    assert holder.email.encode() not in backup_bytes  # encrypted, not merely encoded

    # after the backup, life goes on: the anchors (kept apart) go further than it
    directory.create_organisation(rt, operator, code="LATER", name="Created after the backup")

    fresh = Cli(data_dir=tmp_path / "restored", database_url=other_database)
    restored = fresh.run(
        "restore", str(tmp_path / "vault.cvbackup"), "--identity", str(recipient[1])
    )
    restored.ok()
    assert restored.json["tables"] == made.json["tables"]
    assert "table cards: 1 rows" in restored.stderr
    assert not (fresh.data_dir / "keys" / "master.key").exists()

    kept_anchor = {"audit_anchor_file": settings.anchor_file}
    new = settings.model_copy(
        update={"data_dir": fresh.data_dir, "database_url": other_database, **kept_anchor}
    )
    with pytest.raises(ServiceSealed):
        open_runtime(new)
    try:
        fresh.run("unseal", "--shares-stdin", stdin="\n".join(shares[1:]) + "\n").ok()
        again = open_runtime(new)
        try:
            _rolled_back_until_acknowledged(again, operator)
            result = a.login(Engine(again), holder, code=holder.code())
            assert result.session is not None
        finally:
            again.close()
    finally:
        fresh.forget_unsealed_key()


def _rolled_back_until_acknowledged(rt: Runtime, operator: Actor) -> None:
    report = rollback.verify_all(rt)
    assert not report.ok
    behind = [c for c in report.chains if not c.ok]
    # the organisation made after the backup: its anchored chain is not in the database
    assert len(behind) == 1, [(c.label, c.error) for c in behind]
    assert isinstance(behind[0].error, ChainRolledBack)
    assert "no events in the database, anchored head at event 1" in behind[0].error.message
    rollback.acknowledge_restore(rt, operator, org=None, reason="restored the test backup")
    assert rollback.verify_all(rt).ok


def test_a_backup_opens_only_with_its_key_and_restores_only_into_fresh_places(
    cli: Cli, recipient: tuple[Path, Path], tmp_path: Path, database_url: str
) -> None:
    target = tmp_path / "vault.cvbackup"
    cli.run(
        "backup", "--to", str(target), "--passphrase-stdin", stdin="correct horse battery\n"
    ).ok()
    no_terminal = cli.run("backup", "--to", str(tmp_path / "other.cvbackup"), stdin="")
    assert no_terminal.returncode == 2
    assert "stdin is not a terminal" in no_terminal.error["message"]
    assert "--passphrase-stdin" in no_terminal.error["remedy"]
    refused = cli.run("backup", "--to", str(target), "--passphrase-stdin", stdin="x" * 20 + "\n")
    assert refused.returncode == 2
    assert "exists already" in refused.error["message"]

    fresh = Cli(data_dir=tmp_path / "restored", database_url=f"sqlite:///{tmp_path / 'r.db'}")
    wrong = fresh.run("restore", str(target), "--passphrase-stdin", stdin="wrong horse battery\n")
    assert wrong.returncode == 6
    assert "does not open the backup" in wrong.error["message"]
    with contextlib.suppress(FileNotFoundError):
        assert not any((fresh.data_dir / "keys").iterdir())

    cut = tmp_path / "cut.cvbackup"
    cut.write_bytes(target.read_bytes()[:-10])
    short = fresh.run("restore", str(cut), "--passphrase-stdin", stdin="correct horse battery\n")
    assert short.returncode == 6, short.stderr

    occupied = cli.run(
        "restore", str(target), "--passphrase-stdin", stdin="correct horse battery\n"
    )
    assert occupied.returncode == 4
    assert "already holds a cardvault" in occupied.error["message"]
