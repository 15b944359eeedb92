"""``cardvault-agent login``: one command, several sign-in routes.

Which route a sign-in takes follows from its options alone (:data:`LOGIN_ROUTES`, the first
that fits): a QR code for the paired phone; a security key or an HR card and the passcode;
or an email address or AD account, the passcode, then push or a one-time code. Each route is
a function of the API, the service's address and the options, and returns the signed-in
state; ``login`` saves it and says so.
"""

from __future__ import annotations

import getpass
import io
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cardvault.clients.agent import state
from cardvault.clients.agent.options import Options
from cardvault.clients.agent.options import client as _client
from cardvault.clients.agent.options import options as _opts
from cardvault.clients.agent.options import out as _out
from cardvault.clients.agent.options import trusted as _trusted
from cardvault.clients.common import prompts
from cardvault.clients.common.shell import reported
from cardvault.errors import InvalidInput
from cardvault.lazy import lazy_module

if TYPE_CHECKING:
    import socket

    import segno

    from cardvault.clients.agent import core, fido2_key, key_login
    from cardvault.clients.agent import hr_card as hr_card_reader
    from cardvault.clients.common import api as api_module
    from cardvault.clients.common.api import CardvaultApi
else:  # imported when a sign-in route runs: the agent's --help stays fast
    segno = lazy_module("segno")
    socket = lazy_module("socket")
    core = lazy_module("cardvault.clients.agent.core")
    fido2_key = lazy_module("cardvault.clients.agent.fido2_key")
    key_login = lazy_module("cardvault.clients.agent.key_login")
    hr_card_reader = lazy_module("cardvault.clients.agent.hr_card")
    api_module = lazy_module("cardvault.clients.common.api")

__all__ = ["LOGIN_ROUTES", "LoginArgs", "login"]


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


def _show_qr(png: Path | None) -> Callable[[str], None]:
    def show(uri: str) -> None:
        qr = segno.make(uri, error="m")
        if png is not None:
            qr.save(str(png), scale=6, border=4)
        buf = io.StringIO()
        qr.terminal(out=buf, compact=True)
        typer.echo(f"Scan this with the cardvault app on your phone:\n{buf.getvalue()}", err=True)

    return show


@dataclass(frozen=True, kw_only=True)
class LoginArgs:
    """What ``login`` was given; each route reads the part it needs."""

    email: str | None
    ad_account: str | None
    organisation: str | None
    passcode_stdin: bool
    totp: str | None
    qr: bool
    qr_png: Path | None
    number_file: Path | None
    ra: bool
    role: str | None
    fido2: bool
    hr_card: bool
    hr_card_uid_stdin: bool
    reader: str | None
    wait: float

    @property
    def purpose(self) -> str:
        return "ra" if self.ra else "holder"


Route = Callable[["CardvaultApi", str, LoginArgs], state.AgentState]


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
            "--security-key",
            "--fido2",
            help="Use your security key (with --email/--ad-account, or alone if the "
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
    args = LoginArgs(
        email=email,
        ad_account=ad_account,
        organisation=organisation,
        passcode_stdin=passcode_stdin,
        totp=totp,
        qr=qr,
        qr_png=qr_png,
        number_file=number_file,
        ra=ra,
        role=role,
        fido2=fido2,
        hr_card=hr_card,
        hr_card_uid_stdin=hr_card_uid_stdin,
        reader=reader,
        wait=wait,
    )
    with reported(opts.json):
        if not opts.server:
            raise InvalidInput("Give the service address with --server.")
        route = next(route for applies, route in LOGIN_ROUTES if applies(args))
        with _client(opts, opts.server) as client:
            st = route(api_module.CardvaultApi(client), opts.server, args)
        path = state.save(opts.state_dir, _trusted(opts, st))
    _signed_in(opts, st, path)


def _by_qr(api: CardvaultApi, server: str, args: LoginArgs) -> state.AgentState:
    """The paired phone scans the QR code shown here (no identifier, no passcode here)."""
    return core.qr_login(
        api, server, client_name=socket.gethostname(), show_qr=_show_qr(args.qr_png)
    )


def _by_key_or_card(api: CardvaultApi, server: str, args: LoginArgs) -> state.AgentState:
    """A security key (--fido2) or an HR card (--hr-card, --hr-card-uid-stdin)."""
    _check_role(args)
    who = _who(args)
    if args.fido2 and (args.hr_card or args.hr_card_uid_stdin):
        raise InvalidInput("Sign in with either a security key (--fido2) or an HR card.")
    if args.fido2:
        st = _login_key(api, server, who, args.wait, args.passcode_stdin)
    else:
        st = _login_hr_card(api, server, who, args)
    return _acting(api, st, args)


def _by_passcode(api: CardvaultApi, server: str, args: LoginArgs) -> state.AgentState:
    """An email address or AD account and the passcode, then push or a one-time code."""
    _check_role(args)
    if bool(args.email) == bool(args.ad_account):
        raise InvalidInput("Give exactly one of --email or --ad-account.")
    kind, ident = ("email", args.email) if args.email else ("ad_account", args.ad_account)
    data = core.LoginInput(
        identifier_kind=kind,
        identifier=ident or "",
        passcode=prompts.passcode(args.passcode_stdin),
        organisation=args.organisation,
        client_name=socket.gethostname(),
        purpose=args.purpose,
    )
    st = core.login(
        api,
        server,
        data,
        totp=args.totp,
        ask_code=lambda prompt: prompts.ask(prompt, option="--totp"),
        show_number=_shower(args.number_file),
        note=prompts.tell,
        choose_organisation=_choose_organisation,
    )
    return _acting(api, st, args)


def _choose_organisation(listed: list[tuple[str, str]]) -> str:
    """Several organisations would admit you: which one (the next line of stdin, when the
    passcode came from stdin too)."""
    lines = "\n".join(f"  {code}  {name}" for code, name in listed)
    prompts.tell(f"You can sign in to several organisations:\n{lines}")
    return prompts.ask("Organisation code", option="--organisation")


#: which route a ``login`` takes: the first whose test its options pass
LOGIN_ROUTES: tuple[tuple[Callable[[LoginArgs], bool], Route], ...] = (
    (lambda args: args.qr, _by_qr),
    (lambda args: args.fido2 or args.hr_card or args.hr_card_uid_stdin, _by_key_or_card),
    (lambda args: True, _by_passcode),
)


def _check_role(args: LoginArgs) -> None:
    if args.role and not (args.ra and args.organisation):
        raise InvalidInput("--role needs --ra and --organisation.")


def _acting(api: CardvaultApi, st: state.AgentState, args: LoginArgs) -> state.AgentState:
    """With --role: act under it at once."""
    if args.role and args.organisation:
        return core.select_role(api, st, args.organisation, args.role)
    return st


def _who(args: LoginArgs) -> key_login.Who:
    if args.email and args.ad_account:
        raise InvalidInput("Give only one of --email and --ad-account.")
    return key_login.Who(
        kind="email" if args.email else "ad_account" if args.ad_account else None,
        value=args.email or args.ad_account,
        organisation=args.organisation,
        client_name=socket.gethostname(),
        purpose=args.purpose,
    )


def _login_key(
    api: CardvaultApi, server: str, who: key_login.Who, wait: float, passcode_stdin: bool
) -> state.AgentState:
    ui = key_login.KeyPrompts(
        device=lambda: fido2_key.wait_for_device(
            timeout=wait, on_wait=lambda: prompts.tell("Insert your security key…")
        ),
        touch=lambda: prompts.tell("Touch your security key…"),
        pin=_key_pin,
        passcode=lambda: prompts.passcode(passcode_stdin),
        key_accepted=lambda v: prompts.tell(
            f"Security key “{v.text('key_nickname')}” accepted for {v.text('organisation_name')}."
        ),
    )
    return key_login.login_with_key(api, server, who, ui)


def _login_hr_card(
    api: CardvaultApi, server: str, who: key_login.Who, args: LoginArgs
) -> state.AgentState:
    if who.kind is not None:
        raise InvalidInput("An HR card says who you are: leave out --email and --ad-account.")
    if args.hr_card_uid_stdin:
        uid = _typed_uid()
    else:
        tapped = hr_card_reader.read_uid(
            reader=args.reader,
            timeout=args.wait,
            on_wait=lambda names: prompts.tell(
                f"Tap your HR card on the reader ({', '.join(names)})…"
            ),
        )
        uid = tapped.uid
    uid = _normal_uid(uid)
    prompts.tell(f"HR card {uid} read.")
    return key_login.login_with_hr_card(
        api, server, who, uid, lambda: prompts.passcode(args.passcode_stdin)
    )


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
