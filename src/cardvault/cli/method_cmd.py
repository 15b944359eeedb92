"""Authentication methods of a card, per organisation (the vRA Manager has the pages)."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Annotated

import typer

from cardvault.cli.context import OrgCode, emit, handles_errors, operator, progress, runtime
from cardvault.cli.qr import drawn
from cardvault.clients.agent import fido2_key
from cardvault.commandline import App
from cardvault.errors import InvalidInput
from cardvault.services.cards import methods
from cardvault.services.cards.views import MethodView
from cardvault.services.security_keys import registration as security_key_registration
from cardvault.services.signin import hr_cards

app = App(help="Authentication methods associated with cards.")


@app.command("add-ad")
@handles_errors
def add_ad(
    ctx: typer.Context,
    serial: str,
    org: OrgCode,
    account: Annotated[str, typer.Option(help=r"DOMAIN\name (unique in the organisation).")],
    sid: Annotated[
        str | None,
        typer.Option(help="The account's Windows SID, for AD strong certificate mapping."),
    ] = None,
) -> None:
    """Associate an AD account with the card in one organisation."""
    with runtime(ctx) as rt:
        assoc = methods.add_ad_account(
            rt, operator(), serial=serial, org_code=org, account=account, sid=sid
        )
    _associated(ctx, assoc, serial, org)


@app.command("add-totp")
@handles_errors
def add_totp(
    ctx: typer.Context,
    serial: str,
    org: OrgCode,
    label: Annotated[str, typer.Option(help="A name for the app.")] = "Authenticator app",
    qr_png: Annotated[Path | None, typer.Option(help="Also write the QR code to a PNG.")] = None,
) -> None:
    """Add an authenticator app (TOTP); prints the otpauth:// URI and a QR code once."""
    with runtime(ctx) as rt:
        prov = methods.add_totp(rt, operator(), serial=serial, org_code=org, label=label)
    qr = drawn(prov.uri, qr_png)
    emit(
        ctx,
        {"association_id": prov.association_id, "uri": prov.uri},
        f"Scan this with the holder's authenticator app (shown once):\n{qr}\n{prov.uri}",
    )


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


@app.command("add-hr-card")
@handles_errors
def add_hr_card(
    ctx: typer.Context,
    serial: str,
    org: OrgCode,
    uid: Annotated[str, typer.Option(help="The HR card's UID in hex, e.g. 04:A2:2B:1A:C3:5E:80.")],
    label: Annotated[str | None, typer.Option(help="A name RAs will see.")] = None,
) -> None:
    """Associate an HR card (its contactless UID) with the card in one organisation.

    A UID is an identifier, not a secret: see docs/user/hr-cards.md."""
    with runtime(ctx) as rt:
        assoc = hr_cards.add_hr_card(
            rt, operator(), serial=serial, org_code=org, uid=uid, label=label
        )
    _associated(ctx, assoc, serial, org, what="HR card ")


def _associated(
    ctx: typer.Context, assoc: MethodView, serial: str, org: str, *, what: str = ""
) -> None:
    emit(
        ctx,
        methods.association_dict(assoc),
        f"Associated {what}{assoc.lookup_key} with {serial.upper()} in {org.upper()}.",
    )


@app.command("add-security-key")
@app.command("add-fido2", hidden=True)  # the first release's name, kept for scripts
@handles_errors
def add_security_key(
    ctx: typer.Context,
    serial: str,
    org: OrgCode,
    nickname: Annotated[str, typer.Option(help="The name the holder knows the key by.")] = (
        "Security key"
    ),
    resident: Annotated[
        bool,
        typer.Option(help="Store a discoverable credential: sign-in without an email address."),
    ] = False,
    wait: Annotated[float, typer.Option(min=1, max=600, help="Seconds to wait for the key.")] = 60,
) -> None:
    """Register a FIDO2 security key plugged into this computer for a card.

    The holder touches the key (and enters its PIN when the organisation requires user
    verification). RAs register keys at their desk in the vRA Manager instead."""
    actor = operator()
    with runtime(ctx) as rt:
        start = security_key_registration.begin_registration(
            rt, actor, serial=serial, org_code=org, resident_key=resident
        )
        device = fido2_key.wait_for_device(
            timeout=wait, on_wait=lambda: progress(ctx, "Insert the security key…")
        )
        response = fido2_key.make_credential(
            device,
            origin=rt.settings.rp_origins[0],
            creation_options=start.options,
            pin=_key_pin,
            on_touch=lambda: progress(ctx, "Touch the security key…"),
        )
        assoc = security_key_registration.complete_registration(
            rt, actor, ceremony_id=start.ceremony_id, response=response, nickname=nickname
        )
    emit(
        ctx,
        {**methods.association_dict(assoc), "authenticator": assoc.authenticator},
        f"Registered {assoc.authenticator} “{assoc.label}” for {serial.upper()} in {org.upper()}.",
    )


def _key_pin() -> str:
    if not sys.stdin.isatty():
        raise InvalidInput("The security key's PIN is needed: run this command in a terminal.")
    return getpass.getpass("Security key PIN: ")
