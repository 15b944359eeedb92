"""Housekeeping the operator can run by hand (the service also runs it on its own)."""

from __future__ import annotations

import typer

from cardvault.cli.context import emit, handles_errors, runtime
from cardvault.commandline import App
from cardvault.services.directory import erasure

app = App(help="Housekeeping: erase leavers after their organisation's retention period.")


@app.command("erase-leavers")
@handles_errors
def erase_leavers(ctx: typer.Context) -> None:
    """Erase people who left every organisation longer ago than its retention period (GDPR);
    the audit trail keeps its pseudonymous references."""
    with runtime(ctx) as rt:
        count = erasure.erase_expired(rt)
    emit(ctx, {"erased": count}, f"Erased {count} {'person' if count == 1 else 'people'}.")
