"""``cardvault rp serve``: run the example relying party."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cardvault.cli.context import handles_errors, progress
from cardvault.commandline import App, tls_verify
from cardvault.crypto import x509 as cx509
from cardvault.errors import InvalidInput

app = App(help="The example relying party (stands in for a national system).")


@app.command("serve")
@handles_errors
def serve(
    ctx: typer.Context,
    ca_file: Annotated[Path, typer.Option(help="The card issuing CA to trust (PEM).")],
    cardvault_url: Annotated[str, typer.Option(help="cardvault, for certificate status.")],
    cardvault_ca_file: Annotated[
        Path | None, typer.Option(help="CA of cardvault's TLS certificate.")
    ] = None,
    host: Annotated[str, typer.Option(help="Where to listen.")] = "localhost",
    port: Annotated[int, typer.Option(help="The port to listen on.")] = 9443,
    tls_cert: Annotated[Path | None, typer.Option(help="TLS certificate (PEM).")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="TLS key (PEM).")] = None,
) -> None:
    """Serve GET/POST /login: challenge, verify the card's signature, issue a ticket."""
    import uvicorn  # imported here: every other command starts faster without the RP app

    from cardvault.relying_party.app import RpConfig, create_rp_app

    try:
        ca_cert = cx509.load_certificate_pem(ca_file.read_bytes())
    except OSError as exc:
        raise InvalidInput(f"Cannot read {ca_file}: {exc.strerror}.") from exc
    scheme = "https" if tls_cert else "http"
    origin = f"{scheme}://{host}:{port}"
    config = RpConfig(
        origin=origin,
        ca_cert=ca_cert,
        cardvault_url=cardvault_url.rstrip("/"),
        cardvault_verify=tls_verify(cardvault_ca_file),
    )
    progress(ctx, f"Relying party on {origin}/login")
    uvicorn.run(
        create_rp_app(config),
        host=host,
        port=port,
        log_level="warning",
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
    )
