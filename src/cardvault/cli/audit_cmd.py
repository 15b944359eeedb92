"""Audit: verify the hash chains against their anchors, acknowledge a restore, export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cardvault.cli.context import emit, handles_errors, operator, runtime
from cardvault.commandline import App, exit_code_of
from cardvault.errors import InvalidInput
from cardvault.json_types import JsonObject
from cardvault.services.audit import rollback as audit_rollback
from cardvault.services.audit import trail as audit
from cardvault.services.audit.rollback import Acknowledgement, ChainReport, VerifyReport
from cardvault.services.directory import registry as directory

app = App(help="The audit trail.")

AnchorFiles = Annotated[
    list[Path] | None,
    typer.Option(
        "--anchors",
        help="Anchor files to check against (repeat for several); default: the anchor file. "
        "Needed when anchors go to syslog.",
    ),
]


@app.command("verify")
@handles_errors
def verify(
    ctx: typer.Context,
    org: Annotated[str | None, typer.Option(help="Only this organisation's chain.")] = None,
    anchors: AnchorFiles = None,
) -> None:
    """Prove no event was altered, removed, inserted, reordered, truncated or rolled back."""
    with runtime(ctx) as rt:
        report = audit_rollback.verify_all(rt, org=org, anchor_files=anchors or ())
    emit(ctx, _report_data(report), lambda: _report_text(report))
    failures = [c.error for c in report.chains if c.error] + [report.anchors_error]
    first = next((e for e in failures if e is not None), None)
    if first is not None:
        raise typer.Exit(exit_code_of(first))


def _report_data(report: VerifyReport) -> JsonObject:
    anchors: JsonObject = {
        "sources": list(report.anchor_sources),
        "lines": report.anchor_lines,
        "unreadable": [
            {"source": u.source, "line": u.line, "reason": u.reason} for u in report.unreadable
        ],
    }
    if report.anchors_error is not None:
        anchors["error"] = report.anchors_error.as_dict()
    return {"ok": report.ok, "chains": [_chain_data(c) for c in report.chains], "anchors": anchors}


def _chain_data(chain: ChainReport) -> JsonObject:
    if chain.error is not None:
        return {"chain": chain.label, "ok": False, **chain.error.as_dict()}
    return {"chain": chain.label, "events": chain.events, "anchored": chain.anchored, "ok": True}


def _report_text(report: VerifyReport) -> str:
    lines = [f"{c.label:<12} {_verdict(c)}" for c in report.chains]
    sources = ", ".join(report.anchor_sources) or "none"
    lines.append(f"anchors: {report.anchor_lines} lines read from {sources}")
    lines += [
        f"  note: line {u.line} of {u.source} was skipped: {u.reason}" for u in report.unreadable
    ]
    if report.anchors_error is not None:
        lines.append(f"ANCHORS: {report.anchors_error.diagnostics()}")
    return "\n".join(lines)


def _verdict(chain: ChainReport) -> str:
    if chain.error is not None:
        remedy = f"\n{'':13}{chain.error.remedy}" if chain.error.remedy else ""
        return f"BROKEN: {chain.error.message}{remedy}"
    anchored = f"anchored up to event {chain.anchored}" if chain.anchored else "not anchored"
    return f"ok, {chain.events} events, {anchored}"


@app.command("acknowledge-restore")
@handles_errors
def acknowledge_restore(
    ctx: typer.Context,
    reason: Annotated[str, typer.Option(help="Why the database was restored (audited).")],
    chain: Annotated[
        str | None,
        typer.Option(
            help="The organisation code ('service' for ours; a chain id if its organisation "
            "is gone)."
        ),
    ] = None,
    all_chains: Annotated[
        bool, typer.Option("--all", help="Every chain the anchors show rolled back.")
    ] = False,
    anchors: AnchorFiles = None,
) -> None:
    """Accept a database restored from a backup on purpose: record it in each chain concerned
    and in the anchors, after which `audit verify` passes again (and still catches a later
    rollback)."""
    if (chain is None) == (not all_chains):
        raise InvalidInput("Give either --chain ORG or --all.")
    with runtime(ctx) as rt:
        done = audit_rollback.acknowledge_restore(
            rt, operator(), org=chain, reason=reason, anchor_files=anchors or ()
        )
    emit(
        ctx,
        {"acknowledged": [_ack_data(a) for a in done]},
        lambda: "\n".join(_ack_text(a) for a in done),
    )


def _ack_data(ack: Acknowledgement) -> JsonObject:
    return {
        "chain": ack.label,
        "database_seq": ack.database_seq,
        "anchored_seq": ack.anchored_seq,
        "restored_to": ack.restored_to,
        "event": ack.event_seq,
    }


def _ack_text(ack: Acknowledgement) -> str:
    return (
        f"{ack.label:<12} restore acknowledged at event {ack.event_seq}: the database held "
        f"{ack.database_seq} events, the anchors {ack.anchored_seq}; history kept up to event "
        f"{ack.restored_to}"
    )


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
            chain = directory.show_organisation(rt, org).id
        for line in audit.export(rt, chain, fmt):
            typer.echo(line, nl=False)
