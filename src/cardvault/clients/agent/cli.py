"""``cardvault-agent``: sign in with your virtual smartcard and use it from this PC."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cardvault.clients.agent import connector_cmd, login_cmd, pin_cmd, renew_cmd, state
from cardvault.clients.agent.options import Options
from cardvault.clients.agent.options import client as _client
from cardvault.clients.agent.options import options as _opts
from cardvault.clients.agent.options import out as _out
from cardvault.clients.common import prompts
from cardvault.clients.common.shell import reported
from cardvault.commandline import App, exit_codes_epilog, tls_verify, version_option
from cardvault.errors import InvalidInput
from cardvault.lazy import lazy_module

if TYPE_CHECKING:  # imported when a command first uses them: --help stays fast
    import httpx

    from cardvault.clients.agent import core
    from cardvault.clients.common.api import CardvaultApi
else:
    httpx = lazy_module("httpx")
    core = lazy_module("cardvault.clients.agent.core")

    _api = lazy_module("cardvault.clients.common.api")

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
    with reported(opts.json):
        tls_verify(ca_file)  # a wrong --ca-file is said before any passcode is asked


app.command("login")(login_cmd.login)


@app.command()
def role(
    ctx: typer.Context,
    organisation: Annotated[str | None, typer.Argument(help="Organisation code.")] = None,
    name: Annotated[str | None, typer.Argument(help="ra_manager, ra_agent or auditor.")] = None,
) -> None:
    """RA sessions: list your RA roles, or act in ORGANISATION under role NAME."""
    opts = _opts(ctx)
    with reported(opts.json):
        st = state.load(opts.state_dir)
        with _client(opts, st.server, st.ca_file) as client:
            api = CardvaultApi(client)
            if organisation is None or name is None:
                roles = core.ra_roles(api, st)
                _out(
                    opts,
                    [{"organisation": r.organisation, "role": r.role} for r in roles],
                    "\n".join(f"{r.organisation} {r.role}" for r in roles),
                )
                return
            st = core.select_role(api, st, organisation, name)
        state.save(opts.state_dir, st)
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
    with reported(opts.json):
        st = state.load(opts.state_dir)
        with (
            _client(opts, st.server, st.ca_file) as client,
            httpx.Client(verify=tls_verify(rp_ca_file), timeout=30) as rpc,
        ):
            result = core.authenticate(CardvaultApi(client), st, rp, rpc)
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
    with reported(opts.json):
        digest = _hex_digest(digest_sha256)
        st = state.load(opts.state_dir)
        normal = key.replace("_", "-")
        passcode = prompts.passcode(passcode_stdin) if normal == "content-commitment" else None
        with _client(opts, st.server, st.ca_file) as client:
            result = core.sign(
                CardvaultApi(client),
                st,
                digest=digest,
                key=normal,
                passcode=passcode,
                scheme=scheme,
            )
    _out(opts, result.data, result.text("signature"))


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
    with reported(opts.json):
        st = state.load(opts.state_dir)
        with _client(opts, st.server, st.ca_file) as client:
            info = core.status(CardvaultApi(client), st)
    _out(
        opts,
        info.data,
        f"Card {info.text('card_serial')} ({info.text('organisation')}), session until "
        f"{info.text('expires_at')} (idle until {info.text('idle_expires_at')}).",
    )


@app.command()
def logout(ctx: typer.Context) -> None:
    """End the card session here and on the service."""
    opts = _opts(ctx)
    with reported(opts.json):
        st = state.load(opts.state_dir)
        # local state first: a connector watching it then sees a sign-out, not an ended
        # session; if the service cannot be told, the session still dies at its expiry
        state.clear(opts.state_dir)
        with _client(opts, st.server, st.ca_file) as client:
            core.logout(CardvaultApi(client), st)
    _out(opts, {"signed_out": True}, "Signed out.")


app.command("connector")(connector_cmd.connector)
app.command("renew")(renew_cmd.renew)
app.add_typer(pin_cmd.app, name="pin")


def run() -> None:
    app()
