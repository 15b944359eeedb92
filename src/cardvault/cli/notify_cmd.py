"""Email and SMS: send what is queued, see what could not be delivered."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Annotated

import typer

from cardvault.cli.context import emit, handles_errors, progress, runtime
from cardvault.commandline import App
from cardvault.services.directory import registry as directory
from cardvault.services.notifications import dispatcher
from cardvault.services.notifications import outbox as notifications

app = App(help="Email and SMS notifications (the outbox).")


@app.command("dispatch")
@handles_errors
def dispatch(
    ctx: typer.Context,
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep running and send new messages as they come.")
    ] = False,
) -> None:
    """Send every message that is due now (safe next to running servers: none is sent twice)."""
    with runtime(ctx) as rt:
        worker = dispatcher.Dispatcher(rt, dispatcher.senders_from_settings(rt.settings))
        report = worker.drain()
        while follow:
            time.sleep(rt.settings.notify_poll_seconds)
            report.add(worker.drain())
            progress(ctx, f"sent {report.sent}, retrying {report.retrying}, failed {report.failed}")
    emit(
        ctx,
        asdict(report),
        f"Sent {report.sent}; {report.retrying} will be retried; {report.failed} failed for good.",
    )


@app.command("failed")
@handles_errors
def failed(
    ctx: typer.Context,
    org: Annotated[str, typer.Argument(help="Organisation code.")],
    limit: Annotated[int, typer.Option(help="Show at most this many.")] = 50,
) -> None:
    """Messages of an organisation that could not be delivered, newest first."""
    with runtime(ctx) as rt:
        organisation = directory.show_organisation(rt, org)
        rows = notifications.failed(rt, organisation.id, limit=limit)
    data = [
        {**asdict(r), "created_at": r.created_at.isoformat(), "failed_at": str(r.failed_at)}
        for r in rows
    ]
    lines = [
        f"{r.created_at:%Y-%m-%d %H:%M} {r.channel} {r.template} to {r.recipient}: {r.last_error}"
        for r in rows
    ]
    emit(ctx, data, "\n".join(lines) or f"No failed messages for {organisation.code}.")
