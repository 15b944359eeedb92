"""``cardvault backup``: a consistent snapshot of the database and the sealed key material,
encrypted to the operator (DESIGN §4; docs/operator/backup.md).

The database is read in one snapshot (REPEATABLE READ on PostgreSQL, one WAL snapshot on
SQLite), so the backup is consistent while the service keeps serving. Rows are written in a
portable form -- JSON lines, a table at a time in foreign-key order, datetimes as ISO 8601
UTC and bytes as base64 -- so that a backup of SQLite restores onto PostgreSQL and back.

Of the data directory, only what is sealed under the master key or public goes in (the key
description, the audit, transport and CA keys *sealed*, certificates); never the master key
itself, unsealed (``keys/master.key``, the runtime copy ``unseal`` makes), never the TLS
private key, and not the audit anchor: the anchor must outlive a restore of the database to
catch a rollback (docs/operator/guide.md, "The anchor").

Inside the encrypted box (``crypto.backup_box``) the plaintext is JSON lines: a manifest,
the files, each table's columns then its rows in batches, and an end record with the
counts, which ``restore`` checks.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import JSON, Column, DateTime, Engine, LargeBinary, Table, select

from cardvault import __version__
from cardvault.config import Settings
from cardvault.crypto import backup_box
from cardvault.errors import InvalidInput
from cardvault.json_types import JsonInput, JsonObject
from cardvault.services.system.runtime import keystore_for
from cardvault.store import db
from cardvault.store.models import Base

FORMAT = 1
BATCH = 500
Progress = Callable[[str], None]

#: files of the data directory that go in: sealed, or public (relative glob patterns)
FILES = (
    "keys/master.json",
    "keys/*.sealed",
    "keys/*.pub.pem",
    "keys/transport/*.sealed",
    "ca/*.pem",
    "ca/*.sealed",
    "ca/previous/*.pem",
    # rotations (issue 20): public halves of replaced audit keys, rotated CAs' sealed keys,
    # and where an HSM holds a CA key (the key itself stays in the HSM)
    "keys/audit-previous/*.pub.pem",
    "ca/previous/*.key.sealed",
    "ca/previous/*.pkcs11.json",
    "ca/*.pkcs11.json",
)
#: never, whatever a pattern above might one day match: the master key unsealed
NEVER = frozenset({"keys/master.key"})


@dataclass(frozen=True, kw_only=True)
class Protection:
    """How the backup is encrypted: to a public key (PEM), or under a passphrase."""

    recipient_pem: bytes | None = None
    passphrase: bytes | None = None

    def wrap(self, file_key: bytes) -> dict[str, object]:
        """The file key wrapped for the backup's header; raises InvalidInput unless exactly one of
        the recipient key and the passphrase is given."""
        if (self.recipient_pem is None) == (self.passphrase is None):
            raise InvalidInput("Give either a recipient public key or a passphrase.")
        if self.recipient_pem is not None:
            return dict(backup_box.wrap_for_recipient(self.recipient_pem, file_key))
        assert self.passphrase is not None
        return backup_box.wrap_with_passphrase(self.passphrase, file_key)


@dataclass(frozen=True, kw_only=True)
class BackupSummary:
    """What a backup wrote: where, the schema revision, rows per table, files and size."""

    path: str
    schema_revision: str
    tables: dict[str, int]
    files: tuple[str, ...]
    bytes: int
    #: the master key is on disk (not split): the backup alone will not open the database
    master_key_on_disk: bool


def column_kind(column: Column[Any]) -> str:
    """How a column's values travel: ``datetime``, ``bytes``, ``json`` or ``plain``."""
    impl = getattr(column.type, "impl_instance", column.type)
    if isinstance(impl, DateTime):
        return "datetime"
    if isinstance(impl, LargeBinary):
        return "bytes"
    if isinstance(impl, JSON):
        return "json"
    return "plain"


def encode(kind: str, value: Any) -> Any:
    """A column value as JSON (times in UTC, bytes in base64, enums by value)."""
    if value is None:
        return None
    if kind == "datetime":
        return value.astimezone(UTC).isoformat()
    if kind == "bytes":
        return base64.b64encode(value).decode()
    if isinstance(value, StrEnum):
        return value.value
    return value


def backup(
    settings: Settings, to: Path, protection: Protection, progress: Progress
) -> BackupSummary:
    """Write the encrypted backup to ``to`` (atomically: a temporary file renamed)."""
    if to.exists():
        raise InvalidInput(f"{to} exists already.", remedy="Choose a new file name.")
    file_key = backup_box.new_file_key()
    wrap = protection.wrap(file_key)
    engine = db.make_engine(settings.resolved_database_url)
    partial = to.with_name(f".{to.name}.partial")
    try:
        db.check_current(engine)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            box = backup_box.BoxWriter(out, file_key, wrap)
            summary = _write(box, settings, engine, progress)
            box.close()
            out.flush()
            os.fsync(out.fileno())
        partial.rename(to)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        engine.dispose()
    return BackupSummary(
        path=str(to),
        schema_revision=summary[0],
        tables=summary[1],
        files=summary[2],
        bytes=to.stat().st_size,
        master_key_on_disk=(settings.keys_dir / "master.key").exists(),
    )


def _write(
    box: backup_box.BoxWriter, settings: Settings, engine: Engine, progress: Progress
) -> tuple[str, dict[str, int], tuple[str, ...]]:
    def line(record: Mapping[str, JsonInput]) -> None:
        box.write(json.dumps(record, separators=(",", ":")).encode() + b"\n")

    revision = db.current_revision(engine) or ""
    line(_manifest(settings, engine, revision))
    files = tuple(_files(settings))
    for rel in files:
        data = (settings.data_dir / rel).read_bytes()
        line({"kind": "file", "path": rel, "data": base64.b64encode(data).decode()})
    progress(f"key material: {len(files)} files (sealed or public; not the master key)")
    counts: dict[str, int] = {}
    with engine.connect() as conn:
        conn = conn.execution_options(**db.snapshot_options(engine))
        with conn.begin():
            for table in Base.metadata.sorted_tables:
                counts[table.name] = _table(line, conn, table)
                progress(f"table {table.name}: {counts[table.name]} rows")
    line({"kind": "end", "tables": counts, "files": list(files)})
    return revision, counts, files


def _manifest(settings: Settings, engine: Engine, revision: str) -> JsonObject:
    return {
        "kind": "manifest",
        "format": FORMAT,
        "cardvault_version": __version__,
        "schema_revision": revision,
        "database": engine.dialect.name,
        "key_provider": settings.key_provider,
        "made_at": datetime.now(UTC).isoformat(),
        "sealed": keystore_for(settings).is_sealed(),
    }


def _files(settings: Settings) -> Iterator[str]:
    root = settings.data_dir
    seen: set[str] = set()
    for pattern in FILES:
        for path in sorted(root.glob(pattern)):
            rel = path.relative_to(root).as_posix()
            if path.is_file() and not path.is_symlink() and rel not in NEVER | seen:
                seen.add(rel)
                yield rel


def _table(line: Callable[[Mapping[str, JsonInput]], None], conn: Any, table: Table) -> int:
    columns = list(table.columns)
    kinds = [column_kind(c) for c in columns]
    line(
        {"kind": "table", "name": table.name, "columns": [c.name for c in columns], "kinds": kinds}
    )
    ordered = select(table).order_by(*table.primary_key.columns)
    result = conn.execution_options(yield_per=BATCH).execute(ordered)
    count = 0
    for batch in result.partitions(BATCH):
        rows = [[encode(k, v) for k, v in zip(kinds, row, strict=True)] for row in batch]
        line({"kind": "rows", "table": table.name, "rows": rows})
        count += len(rows)
    return count


def read_records(
    inp: BinaryIO, *, identity_pem: bytes | None, passphrase: bytes | None
) -> Iterator[JsonObject]:
    """The records of a backup, in order, after its header opened with the key given."""
    header, aad = backup_box.read_header(inp)
    wrap = header.get("wrap")
    if not isinstance(wrap, dict):
        raise backup_box.BackupUnreadable("The backup's header is damaged.")
    file_key = backup_box.unwrap(wrap, identity_pem=identity_pem, passphrase=passphrase)
    pending = b""
    for chunk in backup_box.open_chunks(inp, header, aad, file_key):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            yield json.loads(raw)
    if pending.strip():
        yield json.loads(pending)
