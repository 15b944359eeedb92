"""``cardvault-agent``: sign in with your virtual smartcard and use it from this PC."""

from __future__ import annotations

import getpass
import io
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cardvault.clients.agent import connector_cmd, state
from cardvault.clients.agent.options import Options
from cardvault.clients.agent.options import client as _client
from cardvault.clients.agent.options import fail as _fail
from cardvault.clients.agent.options import options as _opts
from cardvault.clients.agent.options import out as _out
from cardvault.clients.agent.options import trusted as _trusted
from cardvault.commandline import App, exit_codes_epilog, tls_verify, version_option
from cardvault.errors import CardvaultError, InvalidInput
from cardvault.lazy import lazy_module

if TYPE_CHECKING:  # imported when a command first uses them: --help stays fast
    import httpx
    import segno

    from cardvault.clients.agent import core, fido2_key, key_login
    from cardvault.clients.agent import hr_card as hr_card_reader
    from cardvault.clients.agent.api import CardvaultApi
else:
    httpx, segno = lazy_module("httpx"), lazy_module("segno")
    core = lazy_module("cardvault.clients.agent.core")
    fido2_key = lazy_module("cardvault.clients.agent.fido2_key")
    key_login = lazy_module("cardvault.clients.agent.key_login")
    hr_card_reader = lazy_module("cardvault.clients.agent.hr_card")

    _api = lazy_module("cardvault.clients.agent.api")

    def CardvaultApi(client: httpx.Client) -> Any:  # noqa: N802 (stands in for the class)
        return _api.CardvaultApi(client)


app = App(
    name="cardvault-agent",
    help="Sign in with your virtual smartcard and use it from this PC.",
    epilog=exit_codes_epilog(),
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
    json_output: Annotated[
        bool, typer.Option("--json", help="Machine-readable output (errors too, on stderr).")
    ] = False,
    version: Annotated[bool, version_option("cardvault-agent")] = False,
) -> None:
    ctx.obj = opts = Options(
        server=server, ca_file=ca_file, state_dir=state_dir or state.default_dir(), json=json_output
    )
    try:
        tls_verify(ca_file)  # a wrong --ca-file is said before any passcode is asked
    except CardvaultError as exc:
        raise _fail(opts, exc) from None


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
    """Sign in: passcode, then your phone (push) or a one-time code; or by QR code;
    or with a security key or an HR card, and the passcode."""
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
            _signed_in(opts, st, state.save(opts.state_dir, _trusted(opts, st)))
            return
        if role and not (ra and organisation):
            raise InvalidInput("--role needs --ra and --organisation.")
        if fido2 or hr_card or hr_card_uid_stdin:
            card = (hr_card_uid_stdin, reader) if hr_card or hr_card_uid_stdin else None
            who = _who(email, ad_account, organisation, ra)
            st = _login_key_or_card(
                opts,
                who,
                fido2=fido2,
                card=card,
                wait=wait,
                passcode_stdin=passcode_stdin,
                role=role,
            )
            _signed_in(opts, st, state.save(opts.state_dir, _trusted(opts, st)))
            return
        if bool(email) == bool(ad_account):
            raise InvalidInput("Give exactly one of --email or --ad-account.")
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
        path = state.save(opts.state_dir, _trusted(opts, st))
    except CardvaultError as exc:
        raise _fail(opts, exc) from None
    _signed_in(opts, st, path)


def _who(
    email: str | None, ad_account: str | None, organisation: str | None, ra: bool
) -> key_login.Who:
    if email and ad_account:
        raise InvalidInput("Give only one of --email and --ad-account.")
    return key_login.Who(
        kind="email" if email else "ad_account" if ad_account else None,
        value=email or ad_account,
        organisation=organisation,
        client_name=socket.gethostname(),
        purpose="ra" if ra else "holder",
    )


def _login_key_or_card(
    opts: Options,
    who: key_login.Who,
    *,
    fido2: bool,
    card: tuple[bool, str | None] | None,
    wait: float,
    passcode_stdin: bool,
    role: str | None,
) -> state.AgentState:
    """A security key (--fido2) or an HR card (--hr-card, --hr-card-uid-stdin)."""
    if fido2 and card is not None:
        raise InvalidInput("Sign in with either a security key (--fido2) or an HR card.")
    assert opts.server is not None
    with _client(opts, opts.server) as client:
        api = CardvaultApi(client)
        if card is not None:
            from_stdin, reader = card
            st = _login_hr_card(api, opts.server, who, from_stdin, reader, wait, passcode_stdin)
        else:
            st = _login_key(api, opts.server, who, wait, passcode_stdin)
        if role and who.organisation:
            st = core.select_role(api, st, who.organisation, role)
    return st


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
        with _client(opts, st.server, st.ca_file) as client:
            api = CardvaultApi(client)
            if organisation is None or name is None:
                roles = core.ra_roles(api, st)
                _out(opts, roles, "\n".join(f"{r['organisation']} {r['role']}" for r in roles))
                return
            st = core.select_role(api, st, organisation, name)
        state.save(opts.state_dir, st)
    except CardvaultError as exc:
        raise _fail(opts, exc) from None
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
            _client(opts, st.server, st.ca_file) as client,
            httpx.Client(verify=tls_verify(rp_ca_file), timeout=30) as rpc,
        ):
            result = core.authenticate(CardvaultApi(client), st, rp, rpc)
    except CardvaultError as exc:
        raise _fail(opts, exc) from None
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
        with _client(opts, st.server, st.ca_file) as client:
            result = core.sign(
                CardvaultApi(client),
                st,
                digest=digest,
                key=normal,
                passcode=passcode,
                scheme=scheme,
            )
    except CardvaultError as exc:
        raise _fail(opts, exc) from None
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
        with _client(opts, st.server, st.ca_file) as client:
            info = core.status(CardvaultApi(client), st)
    except CardvaultError as exc:
        raise _fail(opts, exc) from None
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
        # local state first: a connector watching it then sees a sign-out, not an ended
        # session; if the service cannot be told, the session still dies at its expiry
        state.clear(opts.state_dir)
        with _client(opts, st.server, st.ca_file) as client:
            core.logout(CardvaultApi(client), st)
    except CardvaultError as exc:
        raise _fail(opts, exc) from None
    _out(opts, {"signed_out": True}, "Signed out.")


app.command("connector")(connector_cmd.connector)


def run() -> None:
    app()
