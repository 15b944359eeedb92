"""The issuing CA and the external-CA path."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cardvault.cli.context import emit, handles_errors, operator, runtime, state
from cardvault.commandline import App
from cardvault.crypto import x509 as cx509
from cardvault.errors import InvalidInput
from cardvault.keystore import pkcs11_ca
from cardvault.services.cards import state as cards
from cardvault.services.pki import ca
from cardvault.services.pki import certify as certification
from cardvault.services.system.runtime import hsm_config, keystore_for

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
    hsm: Annotated[
        bool, typer.Option("--hsm", help="Make the CA key inside the HSM (PKCS#11 settings).")
    ] = False,
    key_label: Annotated[
        str, typer.Option(help="With --hsm: the CA key's label in the token.")
    ] = pkcs11_ca.DEFAULT_LABEL,
) -> None:
    """Create the built-in issuing CA, or adopt an existing CA certificate and key."""
    settings = state(ctx).settings
    master = keystore_for(settings).load()
    if (import_cert is None) != (import_key is None):
        raise InvalidInput("Give both --import-cert and --import-key, or neither.")
    if hsm and import_cert is not None:
        raise InvalidInput(
            "--hsm makes a new key in the token; to put an adopted CA's key there, run "
            "`cardvault ca init --import-cert … --import-key …` then `cardvault ca move-to-hsm`."
        )
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
            hsm=hsm_config(settings, key_label=key_label) if hsm else None,
        )
    subject = cx509.name_text(issuer.cert.subject)
    where = " (key in the HSM)" if issuer.in_hsm else ""
    emit(ctx, {"subject": subject, "in_hsm": issuer.in_hsm}, f"Issuing CA ready: {subject}{where}")


@app.command("move-to-hsm")
@handles_errors
def move_to_hsm(
    ctx: typer.Context,
    key_label: Annotated[
        str, typer.Option(help="The CA key's label in the token.")
    ] = pkcs11_ca.DEFAULT_LABEL,
) -> None:
    """Move the issuing CA's key into the HSM: imported non-extractable, checked by a
    signature, then the sealed copy is shredded. Certificates issued so far stay valid."""
    with runtime(ctx) as rt:
        issuer = ca.move_to_hsm(rt, hsm_config(rt.settings, key_label=key_label))
    subject = cx509.name_text(issuer.cert.subject)
    emit(
        ctx,
        {"subject": subject, "in_hsm": True, "key_label": key_label},
        f"The key of {subject} is now in the HSM as {key_label!r}; its sealed copy is gone.",
    )


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


@app.command("rotate")
@handles_errors
def rotate(
    ctx: typer.Context,
    common_name: Annotated[str, typer.Option(help="The new CA's name.")],
    organisation: Annotated[str | None, typer.Option(help="O= of the new CA.")] = None,
    hsm: Annotated[bool, typer.Option("--hsm", help="Make the new key inside the HSM.")] = False,
    key_label: Annotated[
        str, typer.Option(help="With --hsm: the new key's label in the token.")
    ] = pkcs11_ca.DEFAULT_LABEL,
) -> None:
    """Replace the issuing CA online: new certificates and renewals come from the new CA;
    the old one keeps signing its CRL (and OCSP) until its certificates have expired."""
    from cardvault.services.rotation import issuing_ca

    with runtime(ctx) as rt:
        config = hsm_config(rt.settings, key_label=key_label) if hsm else None
        done = issuing_ca.rotate(
            rt, operator(), common_name=common_name, organisation=organisation, hsm=config
        )
    emit(
        ctx,
        {
            "old_subject": done.old_subject,
            "old_key_id": done.old_key_id,
            "new_subject": done.new_subject,
            "new_key_id": done.new_key_id,
        },
        f"Issuing CA is now {done.new_subject} ({done.new_key_id}); {done.old_subject} "
        "keeps signing its CRL until its certificates expire. Give relying parties the "
        "new CA certificate (`cardvault ca export`).",
    )


@app.command("retire-previous")
@handles_errors
def retire_previous(ctx: typer.Context) -> None:
    """Shred the keys of rotated CAs whose certificates have all expired."""
    from cardvault.services.rotation import issuing_ca

    with runtime(ctx) as rt:
        retired = issuing_ca.retire(rt, operator())
    emit(
        ctx,
        {"retired": retired},
        ("Retired: " + ", ".join(retired)) if retired else "No rotated CA can be retired yet.",
    )
