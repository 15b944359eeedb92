"""``cardvault-agent``: sign in with your virtual smartcard and use it from this PC."""

from __future__ import annotations

import getpass
import io
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import httpx
import segno
import typer

from cardvault.clients.agent import connector_cmd, core, state
from cardvault.clients.agent.api import CardvaultApi
from cardvault.clients.agent.options import Options, tls_verify
from cardvault.clients.agent.options import client as _client
from cardvault.clients.agent.options import fail as _fail
from cardvault.clients.agent.options import options as _opts
from cardvault.clients.agent.options import out as _out
from cardvault.errors import CardvaultError, InvalidInput

app = typer.Typer(
    name="cardvault-agent",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Sign in with your virtual smartcard and use it from this PC.",
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def root(
    ctx: typer.Context,
    server: Annotated[
        str | None,
        typer.Option(envvar="CARDVAULT_SERVER", help="cardvault address, https://host:port"),
    ] = None,
    ca_file: Annotated[
        Path | None,
        typer.Option(
            envvar="CARDVAULT_CA_FILE", help="CA certificate that signed the server's TLS cert."
        ),
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(envvar="CARDVAULT_AGENT_STATE_DIR", help="Where the session is kept (0600)."),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    ctx.obj = Options(
        server=server, ca_file=ca_file, state_dir=state_dir or state.default_dir(), json=json_output
    )


def _passcode(from_stdin: bool) -> str:
    if from_stdin:
        value = sys.stdin.readline(4096).rstrip("\r\n")
    elif sys.stdin.isatty():
        value = getpass.getpass("Passcode: ")
    else:
        raise InvalidInput("Cannot prompt for the passcode: use --passcode-stdin.")
    if not value:
        raise InvalidInput("No passcode given.")
    return value


def _ask(prompt: str) -> str:
    if not sys.stdin.isatty():
        line = sys.stdin.readline(64).strip()  # the line after the passcode, if any
        if not line:
            raise InvalidInput(f"{prompt} is needed: pass it with --totp.")
        return line
    return str(typer.prompt(prompt))


def _shower(number_file: Path | None) -> Callable[[str], None]:
    def show(number: str) -> None:
        typer.secho(
            f"Number: {number}\nType this number in the cardvault app on your phone and approve.",
            err=True,
            bold=True,
        )
        if number_file is not None:
            tmp = number_file.with_name(f".{number_file.name}.tmp")
            tmp.write_text(number)
            tmp.replace(number_file)

    return show


def _note(message: str) -> None:
    typer.echo(message, err=True)


def _show_qr(png: Path | None) -> Callable[[str], None]:
    def show(uri: str) -> None:
        qr = segno.make(uri, error="m")
        if png is not None:
            qr.save(str(png), scale=6, border=4)
        buf = io.StringIO()
        qr.terminal(out=buf, compact=True)
        typer.echo(f"Scan this with the cardvault app on your phone:\n{buf.getvalue()}", err=True)

    return show


@app.command()
def login(
    ctx: typer.Context,
    email: Annotated[str | None, typer.Option(help="Your email address.")] = None,
    ad_account: Annotated[str | None, typer.Option(help=r"Your AD account, DOMAIN\name.")] = None,
    organisation: Annotated[str | None, typer.Option(help="Organisation code, if several.")] = None,
    passcode_stdin: Annotated[bool, typer.Option(help="Read the passcode from stdin.")] = False,
    totp: Annotated[str | None, typer.Option(help="The code from your authenticator app.")] = None,
    qr: Annotated[
        bool, typer.Option(help="Sign in by scanning a QR code with your phone.")
    ] = False,
    qr_png: Annotated[Path | None, typer.Option(help="Also write the QR code to a PNG.")] = None,
    number_file: Annotated[
        Path | None, typer.Option(help="Also write the push number to this file.")
    ] = None,
    ra: Annotated[bool, typer.Option("--ra", help="Sign in as an RA user (RA session).")] = False,
    role: Annotated[
        str | None,
        typer.Option(help="With --ra: act under this RA role in --organisation at once."),
    ] = None,
) -> None:
    """Sign in: passcode, then your phone (push) or a one-time code; or by QR code."""
    opts = _opts(ctx)
    try:
        if not opts.server:
            raise InvalidInput("Give the service address with --server.")
        if qr:
            with _client(opts, opts.server) as client:
                st = core.qr_login(
                    CardvaultApi(client),
                    opts.server,
                    client_name=socket.gethostname(),
                    show_qr=_show_qr(qr_png),
                )
            _signed_in(opts, st, state.save(opts.state_dir, st))
            return
        if bool(email) == bool(ad_account):
            raise InvalidInput("Give exactly one of --email or --ad-account.")
        if role and not (ra and organisation):
            raise InvalidInput("--role needs --ra and --organisation.")
        kind, ident = ("email", email) if email else ("ad_account", ad_account)
        data = core.LoginInput(
            identifier_kind=kind,
            identifier=ident or "",
            passcode=_passcode(passcode_stdin),
            organisation=organisation,
            client_name=socket.gethostname(),
            purpose="ra" if ra else "holder",
        )
        with _client(opts, opts.server) as client:
            api = CardvaultApi(client)
            st = core.login(
                api,
                opts.server,
                data,
                totp=totp,
                ask_code=_ask,
                show_number=_shower(number_file),
                note=_note,
            )
            if role and organisation:
                st = core.select_role(api, st, organisation, role)
        path = state.save(opts.state_dir, st)
    except CardvaultError as exc:
        raise _fail(exc) from None
    _signed_in(opts, st, path)


def _signed_in(opts: Options, st: state.AgentState, path: Path) -> None:
    acting = f", acting as {st.acting_role} in {st.acting_organisation}" if st.acting_role else ""
    _out(
        opts,
        {
            "card_serial": st.card_serial,
            "organisation": st.organisation,
            "purpose": st.purpose,
            "acting_organisation": st.acting_organisation,
            "acting_role": st.acting_role,
            "expires_at": st.expires_at,
            "state_file": str(path),
        },
        f"Signed in with card {st.card_serial} ({st.organisation}) until {st.expires_at}{acting}.",
    )


@app.command()
def role(
    ctx: typer.Context,
    organisation: Annotated[str | None, typer.Argument(help="Organisation code.")] = None,
    name: Annotated[str | None, typer.Argument(help="ra_manager, ra_agent or auditor.")] = None,
) -> None:
    """RA sessions: list your RA roles, or act in ORGANISATION under role NAME."""
    opts = _opts(ctx)
    try:
        st = state.load(opts.state_dir)
        with _client(opts, st.server) as client:
            api = CardvaultApi(client)
            if organisation is None or name is None:
                roles = core.ra_roles(api, st)
                _out(opts, roles, "\n".join(f"{r['organisation']} {r['role']}" for r in roles))
                return
            st = core.select_role(api, st, organisation, name)
        state.save(opts.state_dir, st)
    except CardvaultError as exc:
        raise _fail(exc) from None
    _out(
        opts,
        {"organisation": st.acting_organisation, "role": st.acting_role},
        f"Acting as {st.acting_role} in {st.acting_organisation}.",
    )


@app.command()
def authenticate(
    ctx: typer.Context,
    rp: Annotated[str, typer.Option(help="The relying party's sign-in address.")],
    rp_ca_file: Annotated[
        Path | None, typer.Option(help="CA for the RP's TLS certificate.")
    ] = None,
) -> None:
    """Sign in to a relying party: its challenge is signed with your authentication key."""
    opts = _opts(ctx)
    try:
        st = state.load(opts.state_dir)
        with (
            _client(opts, st.server) as client,
            httpx.Client(verify=tls_verify(rp_ca_file), timeout=30) as rpc,
        ):
            result = core.authenticate(CardvaultApi(client), st, rp, rpc)
    except CardvaultError as exc:
        raise _fail(exc) from None
    _out(
        opts,
        result,
        f"Signed in to {rp} as {result.get('subject', '?')}.\nTicket: {result.get('ticket', '')}",
    )


@app.command()
def sign(
    ctx: typer.Context,
    digest_sha256: Annotated[str, typer.Option(help="The SHA-256 digest to sign, in hex.")],
    key: Annotated[
        str, typer.Option(help="authentication or content-commitment")
    ] = "authentication",
    passcode_stdin: Annotated[bool, typer.Option(help="Read the passcode from stdin.")] = False,
    scheme: Annotated[str | None, typer.Option(help="rsa-pkcs1v15, rsa-pss or ecdsa")] = None,
) -> None:
    """Sign a digest; the content-commitment key asks for your passcode every time."""
    opts = _opts(ctx)
    try:
        digest = _hex_digest(digest_sha256)
        st = state.load(opts.state_dir)
        normal = key.replace("_", "-")
        passcode = _passcode(passcode_stdin) if normal == "content-commitment" else None
        with _client(opts, st.server) as client:
            result = core.sign(
                CardvaultApi(client),
                st,
                digest=digest,
                key=normal,
                passcode=passcode,
                scheme=scheme,
            )
    except CardvaultError as exc:
        raise _fail(exc) from None
    _out(opts, result, result["signature"])


def _hex_digest(text: str) -> bytes:
    try:
        raw = bytes.fromhex(text.strip())
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise InvalidInput("--digest-sha256 must be 64 hexadecimal digits.")
    return raw


@app.command()
def status(ctx: typer.Context) -> None:
    """Show the current card session."""
    opts = _opts(ctx)
    try:
        st = state.load(opts.state_dir)
        with _client(opts, st.server) as client:
            info = core.status(CardvaultApi(client), st)
    except CardvaultError as exc:
        raise _fail(exc) from None
    _out(
        opts,
        info,
        f"Card {info['card_serial']} ({info['organisation']}), session until "
        f"{info['expires_at']} (idle until {info['idle_expires_at']}).",
    )


@app.command()
def logout(ctx: typer.Context) -> None:
    """End the card session here and on the service."""
    opts = _opts(ctx)
    try:
        st = state.load(opts.state_dir)
        with _client(opts, st.server) as client:
            try:
                core.logout(CardvaultApi(client), st)
            finally:
                state.clear(opts.state_dir)
    except CardvaultError as exc:
        raise _fail(exc) from None
    _out(opts, {"signed_out": True}, "Signed out.")


app.command("connector")(connector_cmd.connector)


def run() -> None:
    app()
