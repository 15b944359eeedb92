"""The issuing CA and the external-CA path."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cardvault.cli.context import emit, handles_errors, operator, runtime, state
from cardvault.commandline import App
from cardvault.crypto import x509 as cx509
from cardvault.errors import InvalidInput
from cardvault.services.cards import state as cards
from cardvault.services.pki import ca
from cardvault.services.pki import certify as certification
from cardvault.services.system.runtime import keystore_for

app = App(help="The issuing CA and certificates from an external CA.")


def _read(path: Path, what: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"Cannot read the {what} {path}: {exc.strerror}.") from exc
    if len(data) > 256 * 1024:
        raise InvalidInput(f"The {what} {path} is larger than 256 KiB.")
    return data


@app.command("init")
@handles_errors
def init(
    ctx: typer.Context,
    common_name: Annotated[str, typer.Option(help="CA name.")] = "cardvault Issuing CA",
    organisation: Annotated[str | None, typer.Option(help="O= of the CA.")] = None,
    import_cert: Annotated[
        Path | None, typer.Option(help="Adopt this CA certificate (PEM).")
    ] = None,
    import_key: Annotated[Path | None, typer.Option(help="… with this private key (PEM).")] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing CA.")] = False,
) -> None:
    """Create the built-in issuing CA, or adopt an existing CA certificate and key."""
    settings = state(ctx).settings
    master = keystore_for(settings).load()
    if (import_cert is None) != (import_key is None):
        raise InvalidInput("Give both --import-cert and --import-key, or neither.")
    if import_cert is not None and import_key is not None:
        issuer = ca.import_existing(
            settings.data_dir,
            master,
            key_pem=_read(import_key, "key"),
            cert_pem=_read(import_cert, "certificate"),
            force=force,
        )
    else:
        issuer = ca.create(
            settings.data_dir,
            master,
            common_name=common_name,
            organisation=organisation,
            force=force,
        )
    subject = cx509.name_text(issuer.cert.subject)
    emit(ctx, {"subject": subject}, f"Issuing CA ready: {subject}")


@app.command("export")
@handles_errors
def export(ctx: typer.Context) -> None:
    """Print the issuing CA certificate (PEM) for relying parties' trust stores."""
    pem = ca.export_pem(state(ctx).settings.data_dir).decode()
    emit(ctx, {"pem": pem}, pem.rstrip("\n"))


@app.command("export-csr")
@handles_errors
def export_csr(
    ctx: typer.Context,
    serial: str,
    usage: Annotated[str, typer.Argument(help="authentication or content-commitment")],
) -> None:
    """Print a card's pending certificate request for the external CA."""
    with runtime(ctx) as rt:
        pem = cards.export_csr(rt, serial, usage)
    emit(ctx, {"pem": pem}, pem.rstrip("\n"))


@app.command("import-cert")
@handles_errors
def import_cert(
    ctx: typer.Context,
    serial: str,
    usage: Annotated[str, typer.Argument(help="authentication or content-commitment")],
    cert_file: Annotated[Path, typer.Argument(help="The certificate the CA returned (PEM).")],
) -> None:
    """Install the certificate an external CA returned for one of the card's keys."""
    data = _read(cert_file, "certificate")
    with runtime(ctx) as rt:
        summary = cards.import_certificate(rt, operator(), serial, usage, data)
    emit(ctx, summary, f"Installed {usage} certificate {summary['serial']} for {serial}.")


@app.command("certify")
@handles_errors
def certify(
    ctx: typer.Context,
    card: Annotated[str, typer.Option("--card", help="The card's serial.")],
    usage: Annotated[
        str, typer.Option(help="authentication (9A) or content_commitment (9C).")
    ] = "authentication",
    csr: Annotated[
        Path | None, typer.Option(help="A certificate request the card's key signed (PEM).")
    ] = None,
    public_key: Annotated[
        Path | None, typer.Option(help="… or the card's public key itself (PEM).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write the certificate here (PEM); default: stdout.")
    ] = None,
) -> None:
    """Certify a key generated on a PC/SC-personalised card with this service's CA; write
    the certificate to the card's object (yubico-piv-tool -a import-certificate)."""
    key = certification.public_key_of(
        csr_pem=_read(csr, "certificate request") if csr else None,
        key_pem=_read(public_key, "public key") if public_key else None,
    )
    with runtime(ctx) as rt:
        cert = certification.certify(rt, operator(), card, _usage(usage), key)
    pem = cx509.certificate_to_pem(cert)
    if out is not None:
        out.write_bytes(pem)
    summary = cx509.certificate_summary(cert)
    emit(ctx, summary, pem.decode() if out is None else f"Certificate written to {out}.")


def _usage(text: str) -> cx509.CertUsage:
    try:
        return cx509.CertUsage(text.replace("-", "_"))
    except ValueError:
        raise InvalidInput(
            "--usage is authentication or content_commitment.", field="usage"
        ) from None
