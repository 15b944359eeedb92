"""Backup and restore: ``cardvault backup --to FILE`` and ``cardvault restore FILE``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cardvault.cli.context import emit, handles_errors, progress, read_secret, state, warn
from cardvault.errors import InvalidInput
from cardvault.services.system import backup as backups
from cardvault.services.system import restore as restores

BACKUP_HELP = (
    "Back up the database (one consistent snapshot) and the sealed key material, encrypted "
    "to your key."
)
RESTORE_HELP = "Restore a backup into a new data directory and an empty database."


def register(app: typer.Typer) -> None:
    app.command("backup", help=BACKUP_HELP)(backup)
    app.command("restore", help=RESTORE_HELP)(restore)


def _read_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"The {what} {path} cannot be read ({exc.strerror}).") from exc


@handles_errors
def backup(
    ctx: typer.Context,
    to: Annotated[Path, typer.Option("--to", help="The backup file to write (must not exist).")],
    recipient: Annotated[
        Path | None,
        typer.Option(
            "--recipient",
            help="A PEM public key (X25519, or RSA of 3072 bits or more) to encrypt to; "
            "its private key restores.",
        ),
    ] = None,
    passphrase_stdin: Annotated[
        bool,
        typer.Option(
            "--passphrase-stdin",
            help="Encrypt under a passphrase read from stdin (else one is prompted for, "
            "when no --recipient is given).",
        ),
    ] = False,
) -> None:
    """Back up the database (one consistent snapshot) and the sealed key material,
    encrypted to your key."""
    protection = backups.Protection(
        recipient_pem=_read_file(recipient, "recipient key") if recipient else None,
        passphrase=None
        if recipient
        else read_secret(
            "Backup passphrase", from_stdin=passphrase_stdin, stdin_option="--passphrase-stdin"
        ).encode(),
    )
    summary = backups.backup(
        state(ctx).settings, to, protection, lambda message: progress(ctx, message)
    )
    if summary.master_key_on_disk:
        warn(
            "the master key is on disk (keys/master.key), not split among custodians: it "
            "is not in the backup, so keep a copy of it apart, or split it (cardvault keys "
            "split) — without it the backup cannot be used."
        )
    rows = sum(summary.tables.values())
    emit(
        ctx,
        {
            "path": summary.path,
            "schema_revision": summary.schema_revision,
            "tables": summary.tables,
            "files": list(summary.files),
            "bytes": summary.bytes,
        },
        f"Backup written to {summary.path}: {rows} rows in {len(summary.tables)} tables, "
        f"{len(summary.files)} key files, {summary.bytes} bytes.",
    )


@handles_errors
def restore(
    ctx: typer.Context,
    source: Annotated[Path, typer.Argument(help="The backup file.", metavar="FILE")],
    identity: Annotated[
        Path | None,
        typer.Option(
            "--identity",
            help="The PEM private key the backup was encrypted to (else a passphrase).",
        ),
    ] = None,
    passphrase_stdin: Annotated[
        bool,
        typer.Option("--passphrase-stdin", help="Read the backup's passphrase from stdin."),
    ] = False,
) -> None:
    """Restore a backup into a new data directory and an empty database."""
    settings = state(ctx).settings
    summary = restores.restore(
        settings,
        source,
        identity_pem=_read_file(identity, "identity file") if identity else None,
        passphrase=None
        if identity
        else read_secret(
            "Backup passphrase", from_stdin=passphrase_stdin, stdin_option="--passphrase-stdin"
        ).encode(),
        progress=lambda message: progress(ctx, message),
    )
    rows = sum(summary.tables.values())
    emit(
        ctx,
        {
            "made_at": summary.made_at,
            "made_on": summary.made_on,
            "schema_revision": summary.schema_revision,
            "tables": summary.tables,
            "files": list(summary.files),
        },
        f"Restored the backup of {summary.made_at} ({summary.made_on}): {rows} rows, "
        f"{len(summary.files)} key files, into {settings.data_dir}.\n"
        "Next: `cardvault unseal` (the custodians' shares, as before), then "
        "`cardvault audit verify` — a restore of an older backup shows as a rollback until "
        "`cardvault audit acknowledge-restore`.",
    )
