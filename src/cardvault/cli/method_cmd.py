"""Authentication methods of a card, per organisation (the vRA Manager has the pages)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Annotated

import segno
import typer

from cardvault.cli.common import emit, handles_errors, operator, runtime
from cardvault.services import methods

app = typer.Typer(help="Authentication methods associated with cards.", no_args_is_help=True)


@app.command("add-ad")
@handles_errors
def add_ad(
    ctx: typer.Context,
    serial: str,
    org: Annotated[str, typer.Option("--org", help="Organisation code.")],
    account: Annotated[str, typer.Option(help=r"DOMAIN\name (unique in the organisation).")],
) -> None:
    """Associate an AD account with the card in one organisation."""
    with runtime(ctx) as rt:
        assoc = methods.add_ad_account(rt, operator(), serial=serial, org_code=org, account=account)
    emit(
        ctx,
        methods.association_dict(assoc),
        f"Associated {assoc.lookup_key} with {serial.upper()} in {org.upper()}.",
    )


@app.command("add-totp")
@handles_errors
def add_totp(
    ctx: typer.Context,
    serial: str,
    org: Annotated[str, typer.Option("--org", help="Organisation code.")],
    label: Annotated[str, typer.Option(help="A name for the app.")] = "Authenticator app",
    qr_png: Annotated[Path | None, typer.Option(help="Also write the QR code to a PNG.")] = None,
) -> None:
    """Add an authenticator app (TOTP); prints the otpauth:// URI and a QR code once."""
    with runtime(ctx) as rt:
        prov = methods.add_totp(rt, operator(), serial=serial, org_code=org, label=label)
    qr = segno.make(prov.uri, error="m")
    if qr_png:
        qr.save(str(qr_png), scale=6)

    def text() -> str:
        buf = io.StringIO()
        qr.terminal(out=buf, compact=True)
        return (
            f"Scan this with the holder's authenticator app (shown once):\n{buf.getvalue()}"
            f"\n{prov.uri}"
        )

    emit(ctx, {"association_id": prov.association_id, "uri": prov.uri}, text)


@app.command("list")
@handles_errors
def list_(ctx: typer.Context, serial: str) -> None:
    """List the card's methods in every organisation."""
    with runtime(ctx) as rt:
        items = [methods.association_dict(a) for a in methods.list_methods(rt, serial)]
    emit(
        ctx,
        items,
        "\n".join(f"{i['id']}  {i['method']:<12} {i['label'] or ''}" for i in items)
        or "No methods.",
    )


@app.command("remove")
@handles_errors
def remove(ctx: typer.Context, association_id: str) -> None:
    """Remove a method from a card."""
    with runtime(ctx) as rt:
        assoc = methods.remove_method(rt, operator(), association_id)
    emit(ctx, {"removed": assoc.id}, f"Removed {assoc.method} {assoc.label or ''}.")
