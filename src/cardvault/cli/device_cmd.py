"""Paired devices from the command line: a pairing QR code without the web pages, the list,
and revocation. Registered under ``cardvault method``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cardvault.cli.context import OrgCode, emit, handles_errors, operator, runtime
from cardvault.cli.qr import drawn
from cardvault.services.devices import pairing, registry


def register(app: typer.Typer) -> None:
    app.command("pair-device")(pair_device)
    app.command("devices")(devices)
    app.command("revoke-device")(revoke_device)


@handles_errors
def pair_device(
    ctx: typer.Context,
    serial: str,
    org: OrgCode,
    png: Annotated[Path | None, typer.Option(help="Also write the QR code to this PNG.")] = None,
    minutes: Annotated[
        int | None, typer.Option(help="How long the code is valid (default: 10 minutes).")
    ] = None,
) -> None:
    """A single-use pairing QR code for the card: the holder scans it with the app."""
    with runtime(ctx) as rt:
        inv = pairing.create_pairing(rt, operator(), serial=serial, org_code=org, minutes=minutes)
    text = (
        f"Pair a device with card {inv.card_serial} in {inv.organisation}: scan this in "
        f"the app before {inv.expires_at:%H:%M} UTC (single use).\n{drawn(inv.uri, png)}\n"
        f"{inv.uri}"
    )

    data = {
        "uri": inv.uri,
        "card_serial": inv.card_serial,
        "organisation": inv.organisation,
        "expires_at": inv.expires_at.isoformat(),
        "png": str(png) if png else None,
    }
    emit(ctx, data, text)


@handles_errors
def devices(ctx: typer.Context, serial: str) -> None:
    """The card's paired devices (active and revoked)."""
    with runtime(ctx) as rt:
        items = registry.list_devices(rt, serial)
    lines = [
        f"{d['id']}  {d['status']:<8} {d['application']:<13} {d['name']} ({d['platform']})"
        f"{'  biometric' if d['biometric'] else ''}{'  connected' if d.get('connected') else ''}"
        for d in items
    ]
    emit(ctx, items, "\n".join(lines) or "No devices.")


@handles_errors
def revoke_device(
    ctx: typer.Context,
    device_id: str,
    reason: Annotated[str, typer.Option(help="Why (goes to the audit log).")] = "removed",
) -> None:
    """Revoke a device at once: open connections close and its biometric slot is deleted."""
    with runtime(ctx) as rt:
        out = registry.revoke(rt, operator(), device_id, reason=reason)
    emit(ctx, out, f"Revoked {out['name']} ({out['id']}).")
