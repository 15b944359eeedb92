"""``cardvault-authenticator``: the reference phone app, on the command line."""

from __future__ import annotations

import platform
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from cardvault.clients.authenticator import core, state
from cardvault.clients.authenticator.api import DeviceApi
from cardvault.clients.common import prompts, shell
from cardvault.clients.common.replies import JsonValue, Reply
from cardvault.clients.common.shell import reported
from cardvault.commandline import App, exit_codes_epilog, version_option
from cardvault.crypto.device import DeviceKey
from cardvault.errors import InvalidInput

app = App(
    name="cardvault-authenticator",
    help="The reference cardvault authenticator: pair, approve sign-ins, show codes, sign in.",
    epilog=exit_codes_epilog(),
)


@dataclass(kw_only=True)
class Options:
    ca_file: Path | None
    state_dir: Path
    json: bool


@app.callback()
def root(
    ctx: typer.Context,
    ca_file: Annotated[
        Path | None,
        typer.Option(envvar="CARDVAULT_CA_FILE", help="CA that signed the service's TLS cert."),
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(envvar="CARDVAULT_AUTHENTICATOR_DIR", help="Where the app keeps its keys."),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Machine-readable output (errors too, on stderr).")
    ] = False,
    version: Annotated[bool, version_option("cardvault-authenticator")] = False,
) -> None:
    ctx.obj = Options(ca_file=ca_file, state_dir=state_dir or state.default_dir(), json=json_output)


def _opts(ctx: typer.Context) -> Options:
    return shell.options_of(ctx, Options)


def _api(opts: Options, server: str, st: state.DeviceState | None = None) -> DeviceApi:
    client = shell.http_client(server, opts.ca_file)
    if st is None:
        return DeviceApi(client)
    key = DeviceKey.from_pem(st.device_key_pem.encode())
    return DeviceApi(client, device_id=st.device_id, key=key, kid=st.kid or None)


@contextmanager
def _paired(opts: Options) -> Iterator[tuple[state.DeviceState, DeviceApi]]:
    """The paired device's state and its API client, for a command's work (errors reported)."""
    with reported(opts.json):
        st = state.load(opts.state_dir)
        with _api(opts, st.server, st) as api:
            yield st, api


def _out(opts: Options, data: JsonValue, text: str) -> None:
    shell.out(opts.json, data, text)


def _scanned(qr_image: Path | None, uri: str | None, kind: str) -> dict[str, str]:
    if bool(qr_image) == bool(uri):
        raise InvalidInput("Give exactly one of --qr-image or --uri.")
    text = core.decode_qr_image(qr_image) if qr_image else (uri or "")
    return core.parse_uri(text, kind)


QrImage = Annotated[Path | None, typer.Option(help="A picture of the QR code (PNG).")]
Uri = Annotated[str | None, typer.Option(help="The code's text instead of a picture.")]
PasscodeStdin = Annotated[bool, typer.Option(help="Read the passcode from stdin.")]


@app.command()
def pair(
    ctx: typer.Context,
    qr_image: QrImage = None,
    uri: Uri = None,
    passcode_stdin: PasscodeStdin = False,
    name: Annotated[str | None, typer.Option(help="A name for this device.")] = None,
    application: Annotated[str, typer.Option(help="authenticator or mia")] = "authenticator",
    biometric: Annotated[bool, typer.Option(help="Enable biometric unlock (mia).")] = False,
) -> None:
    """Pair with your card: scan the RA's QR code and type your passcode."""
    opts = _opts(ctx)
    with reported(opts.json):
        fields = _scanned(qr_image, uri, "pair")
        data = core.PairInput(
            uri=uri or "",
            passcode=prompts.passcode(passcode_stdin),
            name=name or f"{socket.gethostname()} (reference app)"[:100],
            platform=f"{platform.system()} {platform.release()}"[:40],
            application=application,
            biometric=biometric,
        )
        with _api(opts, fields["server"]) as api:
            st = core.pair(api, fields, data)
        path = state.save(opts.state_dir, st)
    _out(
        opts,
        {"device_id": st.device_id, "card_serial": st.card_serial, "state_file": str(path)},
        f"Paired with card {st.card_serial} ({st.organisation}) for {st.holder_name}.",
    )


@app.command()
def code(ctx: typer.Context) -> None:
    """Show the current one-time code (works offline)."""
    opts = _opts(ctx)
    with reported(opts.json):
        st = state.load(opts.state_dir)
    now = time.time()
    value = core.totp_code(st, now)
    _out(opts, {"code": value, "valid_for": 30 - int(now) % 30}, value)


def _chooser(
    number: str | None, number_file: Path | None, deny: bool, not_me: bool, delay: float
) -> core.Chooser:
    def choose(challenge: Reply) -> core.Choice | None:
        time.sleep(delay)
        if deny or not_me:
            return core.Choice(decision="not_me" if not_me else "deny")
        if number is not None:
            return core.Choice(decision="approve", number=number)
        if number_file is not None:
            return core.Choice(decision="approve", number=core.number_from_file(number_file, 120))
        if not sys.stdin.isatty():
            prompts.tell("Not answered: give --number, --deny or --not-me, or run in a terminal.")
            return None
        typed = typer.prompt("Type the number shown on your computer (d: deny, n: not me)")
        if typed.strip().lower() in ("d", "n"):
            return core.Choice(decision="deny" if typed.strip().lower() == "d" else "not_me")
        return core.Choice(decision="approve", number=typed.strip())

    return choose


@app.command()
def listen(
    ctx: typer.Context,
    number: Annotated[str | None, typer.Option(help="Approve with this number.")] = None,
    number_file: Annotated[
        Path | None, typer.Option(help="Approve with the number that appears in this file.")
    ] = None,
    deny: Annotated[bool, typer.Option(help="Deny every request.")] = False,
    not_me: Annotated[bool, typer.Option(help='Answer "this wasn\'t me".')] = False,
    delay: Annotated[float, typer.Option(help="Seconds to wait before answering.")] = 0.0,
    once: Annotated[bool, typer.Option(help="Exit after the first answer.")] = False,
) -> None:
    """Stay connected and answer sign-in requests (push with number matching)."""
    opts = _opts(ctx)
    choose = _chooser(number, number_file, deny, not_me, delay)
    with _paired(opts) as (_, api):
        count = core.listen(api, choose, prompts.tell, once=once)
    _out(opts, {"answered": count}, f"Answered {count} request(s).")


app.command("approve", help="Same as listen.")(listen)


@app.command()
def login(
    ctx: typer.Context,
    passcode_stdin: PasscodeStdin = False,
    biometric: Annotated[bool, typer.Option(help="Unlock with the biometric instead.")] = False,
) -> None:
    """Mobile identity agent: open a card session on this device."""
    opts = _opts(ctx)
    with _paired(opts) as (st, api):
        passcode = None
        if biometric:
            prompts.tell("Biometric prompt: touch the sensor… (simulated) accepted.")
        else:
            passcode = prompts.passcode(passcode_stdin)
        session = core.mia_login(api, st, passcode=passcode, biometric=biometric)
        st.session = session
        state.save(opts.state_dir, st)
    _out(
        opts,
        {k: v for k, v in session.items() if k not in ("token", "session_key")},
        f"Signed in with card {session['card_serial']} until {session['expires_at']}.",
    )


@app.command("qr-login")
def qr_login(
    ctx: typer.Context,
    qr_image: QrImage = None,
    uri: Uri = None,
    passcode_stdin: PasscodeStdin = False,
    deny: Annotated[bool, typer.Option(help="Refuse the request.")] = False,
) -> None:
    """Sign a computer in by scanning the QR code it shows, then typing your passcode here."""
    opts = _opts(ctx)
    with _paired(opts) as (_, api):
        fields = _scanned(qr_image, uri, "login")
        about = core.qr_inspect(api, fields)
        prompts.tell(
            f"Sign-in request for {about.text('organisation_name')} from "
            f"{about.optional_text('client_name') or 'an unnamed computer'} "
            f"({about.optional_text('client_address')})."
        )
        passcode = None if deny else prompts.passcode(passcode_stdin)
        result = core.qr_answer(api, fields, passcode=passcode, approve=not deny)
    _out(opts, result.data, f"Sign-in {result.optional_text('status')}.")


@app.command()
def status(ctx: typer.Context) -> None:
    """The pairing as the service sees it, and the mobile-agent session if any."""
    opts = _opts(ctx)
    with _paired(opts) as (st, api):
        info = api.signed("GET", "/api/v1/device").data
        if st.session:
            info["session"] = api.get("/api/v1/session", token=st.session["token"]).data
    _out(opts, info, f"Device {info.get('name')} is paired with card {st.card_serial}.")


@app.command()
def unpair(ctx: typer.Context) -> None:
    """Remove this device from the card and forget its keys."""
    opts = _opts(ctx)
    with _paired(opts) as (_, api):
        api.signed("DELETE", "/api/v1/device")
        state.forget(opts.state_dir)
    _out(opts, {"unpaired": True}, "Unpaired.")


def run() -> None:
    app()
