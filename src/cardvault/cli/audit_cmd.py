"""Audit: verify the hash chains, export an organisation's events."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cardvault.cli.common import emit, handles_errors, runtime
from cardvault.commandline import App
from cardvault.errors import CardvaultError, InvalidInput
from cardvault.services import audit, directory

app = App(help="The audit trail.")


@app.command("verify")
@handles_errors
def verify(
    ctx: typer.Context,
    org: Annotated[str | None, typer.Option(help="Only this organisation's chain.")] = None,
) -> None:
    """Prove no event was altered, removed, inserted, reordered or truncated."""
    with runtime(ctx) as rt:
        with rt.db() as session:
            targets = (
                [(directory.get_org(session, org).id, org.upper())]
                if org
                else audit.chains(session)
            )
        results, failure = [], None
        for chain, label in targets:
            try:
                results.append({"chain": label, "events": audit.verify(rt, chain), "ok": True})
            except CardvaultError as exc:
                results.append({"chain": label, "ok": False, **exc.as_dict()})
                failure = failure or exc
    emit(
        ctx,
        {"ok": failure is None, "chains": results},
        lambda: "\n".join(f"{r['chain']:<12} {_verdict(r)}" for r in results),
    )
    if failure is not None:
        raise typer.Exit(failure.exit_code)


def _verdict(result: dict[str, Any]) -> str:
    return f"ok, {result['events']} events" if result["ok"] else f"BROKEN: {result['message']}"


@app.command("export")
@handles_errors
def export(
    ctx: typer.Context,
    org: Annotated[str, typer.Option("--org", help="Organisation code ('service' for ours).")],
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv")] = "jsonl",
) -> None:
    """Write an organisation's audit events, in chain order, to stdout."""
    if fmt not in ("jsonl", "csv"):
        raise InvalidInput("--format is jsonl or csv.")
    with runtime(ctx) as rt:
        if org.lower() == audit.SERVICE_CHAIN:
            chain = audit.SERVICE_CHAIN
        else:
            with rt.db() as session:
                chain = directory.get_org(session, org).id
        for line in audit.export(rt, chain, fmt):
            typer.echo(line, nl=False)
