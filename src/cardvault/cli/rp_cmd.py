"""``cardvault rp serve``: run the example relying party."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Annotated, Any

import typer

from cardvault.cli.common import handles_errors, progress
from cardvault.crypto import x509 as cx509
from cardvault.errors import InvalidInput

app = typer.Typer(
    help="The example relying party (stands in for a national system).", no_args_is_help=True
)


@app.command("serve")
@handles_errors
def serve(
    ctx: typer.Context,
    ca_file: Annotated[Path, typer.Option(help="The card issuing CA to trust (PEM).")],
    cardvault_url: Annotated[str, typer.Option(help="cardvault, for certificate status.")],
    cardvault_ca_file: Annotated[
        Path | None, typer.Option(help="CA of cardvault's TLS certificate.")
    ] = None,
    host: Annotated[str, typer.Option()] = "localhost",
    port: Annotated[int, typer.Option()] = 9443,
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
    verify: Any = (
        ssl.create_default_context(cafile=str(cardvault_ca_file)) if cardvault_ca_file else True
    )
    config = RpConfig(
        origin=origin,
        ca_cert=ca_cert,
        cardvault_url=cardvault_url.rstrip("/"),
        cardvault_verify=verify,
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
