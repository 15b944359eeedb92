"""``cardvault-agent``: sign in with your virtual smartcard and use it from this PC."""

from __future__ import annotations

import getpass
import json
import socket
import ssl
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from cardvault.clients.agent import core, fido2_key, key_login, state
from cardvault.clients.agent import hr_card as hr_card_reader
from cardvault.clients.agent.api import CardvaultApi
from cardvault.errors import CardvaultError, InvalidInput

app = typer.Typer(
    name="cardvault-agent",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Sign in with your virtual smartcard and use it from this PC.",
    context_settings={"help_option_names": ["-h", "--help"]},
)


@dataclass(kw_only=True)
class Options:
    server: str | None
    ca_file: Path | None
    state_dir: Path
    json: bool


def _opts(ctx: typer.Context) -> Options:
    obj = ctx.find_root().obj
    assert isinstance(obj, Options)
    return obj


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


def _client(opts: Options, server: str) -> httpx.Client:
    return httpx.Client(base_url=server, verify=tls_verify(opts.ca_file), timeout=30.0)


def tls_verify(ca_file: Path | None) -> ssl.SSLContext | bool:
    """Verify against the given CA file, or the system's trust store."""
    return ssl.create_default_context(cafile=str(ca_file)) if ca_file else True


def _out(opts: Options, data: Any, text: str) -> None:
    typer.echo(json.dumps(data, indent=2, default=str) if opts.json else text)


def _fail(exc: CardvaultError) -> typer.Exit:
    typer.secho(f"Error: {exc.diagnostics()}", err=True, fg="red")
    return typer.Exit(exc.exit_code)


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
        raise InvalidInput(f"{prompt} is needed: pass it with --totp.")
    return str(typer.prompt(prompt))


@app.command()
def login(
    ctx: typer.Context,
    email: Annotated[str | None, typer.Option(help="Your email address.")] = None,
    ad_account: Annotated[str | None, typer.Option(help=r"Your AD account, DOMAIN\name.")] = None,
    organisation: Annotated[str | None, typer.Option(help="Organisation code, if several.")] = None,
    passcode_stdin: Annotated[bool, typer.Option(help="Read the passcode from stdin.")] = False,
    totp: Annotated[str | None, typer.Option(help="The code from your authenticator app.")] = None,
    fido2: Annotated[
        bool,
        typer.Option(
            "--fido2",
            help="Use your FIDO2 security key (with --email/--ad-account, or alone if the "
            "key was registered for sign-in without an email address).",
        ),
    ] = False,
    hr_card: Annotated[
        bool, typer.Option("--hr-card", help="Tap your HR card on a contactless reader.")
    ] = False,
    hr_card_uid_stdin: Annotated[
        bool,
        typer.Option(
            "--hr-card-uid-stdin",
            help="Read the HR card number from stdin (a keyboard-wedge reader types it).",
        ),
    ] = False,
    reader: Annotated[
        str | None, typer.Option(help="The contactless reader for --hr-card (part of its name).")
    ] = None,
    wait: Annotated[
        float, typer.Option(min=1, max=600, help="Seconds to wait for the key or the card.")
    ] = 60.0,
) -> None:
    """Sign in: passcode and second factor, or security key / HR card and passcode.

    The session is kept for later commands."""
    opts = _opts(ctx)
    try:
        if not opts.server:
            raise InvalidInput("Give the service address with --server.")
        if email and ad_account:
            raise InvalidInput("Give only one of --email and --ad-account.")
        if fido2 and (hr_card or hr_card_uid_stdin):
            raise InvalidInput("Sign in with either a security key (--fido2) or an HR card.")
        who = key_login.Who(
            kind="email" if email else "ad_account" if ad_account else None,
            value=email or ad_account,
            organisation=organisation,
            client_name=socket.gethostname(),
        )
        with _client(opts, opts.server) as client:
            api = CardvaultApi(client)
            if hr_card or hr_card_uid_stdin:
                st = _login_hr_card(
                    api, opts.server, who, hr_card_uid_stdin, reader, wait, passcode_stdin
                )
            elif fido2:
                st = _login_key(api, opts.server, who, wait, passcode_stdin)
            else:
                st = _login_passcode(api, opts.server, who, passcode_stdin, totp)
        path = state.save(opts.state_dir, st)
    except CardvaultError as exc:
        raise _fail(exc) from None
    _out(
        opts,
        {
            "card_serial": st.card_serial,
            "organisation": st.organisation,
            "expires_at": st.expires_at,
            "state_file": str(path),
        },
        f"Signed in with card {st.card_serial} ({st.organisation}) until {st.expires_at}.",
    )


def _login_passcode(
    api: CardvaultApi, server: str, who: key_login.Who, passcode_stdin: bool, totp: str | None
) -> state.AgentState:
    if who.kind is None:
        raise InvalidInput("Give --email or --ad-account (or use --fido2 or --hr-card).")
    data = core.LoginInput(
        identifier_kind=who.kind,
        identifier=who.value or "",
        passcode=_passcode(passcode_stdin),
        organisation=who.organisation,
        client_name=who.client_name,
    )
    return core.login(api, server, data, totp=totp, ask_code=_ask)


def _login_key(
    api: CardvaultApi, server: str, who: key_login.Who, wait: float, passcode_stdin: bool
) -> state.AgentState:
    ui = key_login.KeyPrompts(
        device=lambda: fido2_key.wait_for_device(
            timeout=wait, on_wait=lambda: _tell("Insert your security key…")
        ),
        touch=lambda: _tell("Touch your security key…"),
        pin=_key_pin,
        passcode=lambda: _passcode(passcode_stdin),
        key_accepted=lambda v: _tell(
            f"Security key “{v['key_nickname']}” accepted for {v['organisation_name']}."
        ),
    )
    return key_login.login_with_key(api, server, who, ui)


def _login_hr_card(
    api: CardvaultApi,
    server: str,
    who: key_login.Who,
    from_stdin: bool,
    reader: str | None,
    wait: float,
    passcode_stdin: bool,
) -> state.AgentState:
    if who.kind is not None:
        raise InvalidInput("An HR card says who you are: leave out --email and --ad-account.")
    if from_stdin:
        uid = _typed_uid()
    else:
        tapped = hr_card_reader.read_uid(
            reader=reader,
            timeout=wait,
            on_wait=lambda names: _tell(f"Tap your HR card on the reader ({', '.join(names)})…"),
        )
        uid = tapped.uid
    uid = _normal_uid(uid)
    _tell(f"HR card {uid} read.")
    return key_login.login_with_hr_card(api, server, who, uid, lambda: _passcode(passcode_stdin))


def _typed_uid() -> str:
    """A keyboard-wedge reader types the card number and Enter, like a person would."""
    if sys.stdin.isatty():
        return str(typer.prompt("Tap your HR card on the reader (or type its number)"))
    return sys.stdin.readline(256).strip()


def _normal_uid(value: str) -> str:
    cleaned = "".join(ch for ch in value.upper() if ch not in " :.-")
    if len(cleaned) // 2 not in hr_card_reader.UID_LENGTHS or len(cleaned) % 2:
        raise InvalidInput(
            "An HR card number is 4, 7 or 10 bytes in hexadecimal, like 04:A2:2B:1A:C3:5E:80."
        )
    try:
        bytes.fromhex(cleaned)
    except ValueError:
        raise InvalidInput("An HR card number is written in hexadecimal (0-9, A-F).") from None
    return cleaned


def _key_pin() -> str:
    if not sys.stdin.isatty():
        raise InvalidInput(
            "This organisation requires your security key's PIN: run the agent in a terminal."
        )
    return getpass.getpass("Security key PIN: ")


def _tell(message: str) -> None:
    typer.echo(message, err=True)


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


def run() -> None:
    app()
