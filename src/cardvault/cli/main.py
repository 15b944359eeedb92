"""The ``cardvault`` admin command: the root, its global options and the command groups."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cardvault.cli import (
    audit_cmd,
    ca_cmd,
    card_cmd,
    device_cmd,
    keys_cmd,
    method_cmd,
    notify_cmd,
    org_cmd,
    person_cmd,
    rp_cmd,
    service_cmd,
)
from cardvault.cli.context import State
from cardvault.commandline import App, exit_codes_epilog, version_option

app = App(
    name="cardvault",
    help="Run and administer cardvault, the virtual smartcard service.",
    epilog=exit_codes_epilog(),
)


@app.callback()
def root(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            envvar="CARDVAULT_DATA_DIR",
            help="Data directory (keys, database, outbox). Default: ./data",
        ),
    ] = None,
    json_output: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print machine-readable JSON instead of text (errors too, on stderr). "
            "Give it before the command: cardvault --json card show SERIAL.",
        ),
    ] = False,
    version: Annotated[bool, version_option("cardvault")] = False,
) -> None:
    ctx.obj = State(data_dir=data_dir, json=json_output)


service_cmd.register(app)
app.add_typer(keys_cmd.app, name="keys")
app.add_typer(org_cmd.app, name="org")
app.add_typer(person_cmd.app, name="person")
app.add_typer(person_cmd.ra_app, name="ra")
app.add_typer(card_cmd.app, name="card")
app.add_typer(ca_cmd.app, name="ca")
app.add_typer(audit_cmd.app, name="audit")
device_cmd.register(method_cmd.app)
app.add_typer(method_cmd.app, name="method")
app.add_typer(rp_cmd.app, name="rp")
app.add_typer(notify_cmd.app, name="notify")


def run() -> None:
    app()
