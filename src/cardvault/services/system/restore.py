"""``cardvault restore``: a backup onto a fresh data directory and an empty database
(docs/operator/restore.md).

The schema is made by the migrations at the backup's revision (the one this cardvault has
as its head: restore with the version that made the backup, then ``cardvault db upgrade``
with the new one), the rows go in a table at a time in foreign-key order in one
transaction, and the files are written only once every row is in: a restore that fails
leaves an empty database and no keys, and can simply be run again.

The master key is not in a backup: the custodians unseal the restored service with their
shares as before (or the HSM holds it). The audit anchor is not in it either: against the
anchor kept elsewhere, a restore of an older backup shows as a rollback in ``cardvault
audit verify`` until it is acknowledged (``cardvault audit acknowledge-restore``).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

from sqlalchemy import Connection, Engine, Table, delete, insert, inspect

from cardvault import json_types
from cardvault.config import Settings
from cardvault.crypto.backup_box import BackupUnreadable
from cardvault.errors import Conflict
from cardvault.json_types import JsonObject, JsonValue
from cardvault.services.system.backup import FILES, FORMAT, NEVER, Progress, read_records
from cardvault.services.system.bootstrap import development_tls
from cardvault.store import db
from cardvault.store.models import Base


@dataclass(frozen=True, kw_only=True)
class RestoreSummary:
    """What a restore loaded: when and where the backup was made, its revision, rows and files."""

    made_at: str
    made_on: str
    schema_revision: str
    tables: dict[str, int]
    files: tuple[str, ...]


def restore(
    settings: Settings,
    source: Path,
    *,
    identity_pem: bytes | None,
    passphrase: bytes | None,
    progress: Progress,
) -> RestoreSummary:
    """Restore ``source`` into ``settings``' (fresh) data directory and (empty) database."""
    _refuse_initialised(settings)
    engine = db.make_engine(settings.resolved_database_url)
    try:
        _refuse_used_database(engine)
        with source.open("rb") as inp:
            records = read_records(inp, identity_pem=identity_pem, passphrase=passphrase)
            manifest = _manifest(next(records, None))
            db.upgrade(engine)
            files, counts = _load(engine, records, progress)
    except BaseException:
        engine.dispose()
        raise
    engine.dispose()
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    for rel, data in files.items():
        _write_file(settings.data_dir, rel, data)
    progress(f"key material: {len(files)} files written to {settings.data_dir}")
    development_tls(settings, progress)  # the TLS key is never in a backup
    return RestoreSummary(
        made_at=str(manifest.get("made_at")),
        made_on=str(manifest.get("database")),
        schema_revision=str(manifest.get("schema_revision")),
        tables=counts,
        files=tuple(files),
    )


def _refuse_initialised(settings: Settings) -> None:
    if (settings.keys_dir / "master.json").exists():
        raise Conflict(
            f"{settings.data_dir} already holds a cardvault (keys/master.json).",
            remedy="Restore into a new, empty data directory (--data-dir).",
        )


def _refuse_used_database(engine: Engine) -> None:
    with engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
    if tables & ({"alembic_version"} | set(Base.metadata.tables)):
        raise Conflict(
            "The database is not empty: it already holds cardvault tables.",
            remedy="Restore into a new, empty database (CARDVAULT_DATABASE_URL).",
        )


def _manifest(first: JsonObject | None) -> JsonObject:
    if first is None or first.get("kind") != "manifest" or first.get("format") != FORMAT:
        raise BackupUnreadable("The backup does not begin with its manifest.")
    head = db.head_revision()
    if first.get("schema_revision") != head:
        raise Conflict(
            f"The backup's schema is revision {first.get('schema_revision')}, this "
            f"cardvault's is {head}.",
            remedy=f"Restore with cardvault {first.get('cardvault_version')} (the version "
            "that made it), then upgrade with `cardvault db upgrade`.",
        )
    return first


def _load(
    engine: Engine, records: Iterator[JsonObject], progress: Progress
) -> tuple[dict[str, bytes], dict[str, int]]:
    """Every row in one transaction; the files kept to be written after it commits."""
    files: dict[str, bytes] = {}
    counts: dict[str, int] = {}
    table: _Loading | None = None
    with engine.begin() as conn:
        for table_obj in reversed(Base.metadata.sorted_tables):  # rows a migration made
            conn.execute(delete(table_obj))
        for record in records:
            kind = record.get("kind")
            if kind == "file":
                data = json_types.text(record, "data")
                files[_safe_path(record.get("path"))] = base64.b64decode(data)
            elif kind == "table":
                if table is not None:
                    counts[table.table.name] = table.done(progress)
                table = _Loading.start(record)
            elif kind == "rows" and table is not None and record.get("table") == table.table.name:
                table.add(conn, _rows(record))
            elif kind == "end":
                if table is not None:
                    counts[table.table.name] = table.done(progress)
                _check_end(record, counts, files)
                return files, counts
            else:
                raise BackupUnreadable(f"The backup holds a record it should not ({kind!r}).")
    raise BackupUnreadable("The backup ends before its end record: it is incomplete.")


def _check_end(record: JsonObject, counts: dict[str, int], files: dict[str, bytes]) -> None:
    if record.get("tables") != counts or sorted(_texts(record, "files")) != sorted(files):
        raise BackupUnreadable("The backup's contents do not add up to its end record.")


def _texts(record: JsonObject, key: str) -> list[str]:
    """A list of names the backup wrote (columns, kinds, files); anything else is damage."""
    items = record.get(key) or []
    if not isinstance(items, list):
        raise BackupUnreadable(f"The backup's {key} are damaged.")
    return [str(item) for item in items]


def _rows(record: JsonObject) -> list[list[JsonValue]]:
    rows = record.get("rows") or []
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise BackupUnreadable(f"The backup's rows of {record.get('table')!r} are damaged.")
    return [row for row in rows if isinstance(row, list)]


@dataclass(kw_only=True)
class _Loading:
    table: Table
    columns: list[str]
    kinds: list[str]
    rows: int = 0

    @classmethod
    def start(cls, record: JsonObject) -> _Loading:
        table = Base.metadata.tables.get(str(record.get("name")))
        columns, kinds = _texts(record, "columns"), _texts(record, "kinds")
        if table is None or set(columns) != set(table.columns.keys()):
            raise BackupUnreadable(f"The backup's table {record.get('name')!r} is not ours.")
        return cls(table=table, columns=columns, kinds=kinds)

    def add(self, conn: Connection, rows: list[list[JsonValue]]) -> None:
        values = [
            {c: _decode(k, v) for c, k, v in zip(self.columns, self.kinds, row, strict=True)}
            for row in rows
        ]
        if values:
            conn.execute(insert(self.table), values)
        self.rows += len(values)

    def done(self, progress: Progress) -> int:
        progress(f"table {self.table.name}: {self.rows} rows")
        return self.rows


def _decode(kind: str, value: JsonValue) -> object:
    if value is None:
        return None
    if kind == "datetime":
        return datetime.fromisoformat(str(value))
    if kind == "bytes":
        return base64.b64decode(str(value))
    return value


def _safe_path(raw: object) -> str:
    """A backup names files relative to the data directory, and only those it may hold."""
    path = PurePosixPath(str(raw))
    rel = path.as_posix()
    if path.is_absolute() or ".." in path.parts or rel in NEVER:
        raise BackupUnreadable(f"The backup names a file it must not hold: {rel!r}.")
    if not any(path.match(p) and len(path.parts) == len(PurePosixPath(p).parts) for p in FILES):
        raise BackupUnreadable(f"The backup names a file it must not hold: {rel!r}.")
    return rel


def _write_file(root: Path, rel: str, data: bytes) -> None:
    path = root / rel
    for parent in reversed(path.relative_to(root).parents):
        (root / parent).mkdir(mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
