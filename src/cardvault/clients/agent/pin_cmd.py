"""``cardvault-agent pin``: your card PIN, the short PIN smartcard software asks for.

It is set and changed only inside the card session ``cardvault-agent login`` opened with your
passcode and second factor. A blocked PIN (three wrong tries) is unblocked by signing in
again: the new session may set a new PIN without the old one.
"""

from __future__ import annotations

import getpass
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from cardvault.clients.agent import state
from cardvault.clients.agent.options import client, options, out
from cardvault.clients.common.replies import JsonObject, Reply
from cardvault.clients.common.shell import reported
from cardvault.commandline import App
from cardvault.errors import InvalidInput, PermissionDenied
from cardvault.lazy import lazy_module

if TYPE_CHECKING:
    import httpx

    from cardvault.clients.common import api as api_module
    from cardvault.clients.common.api import CardvaultApi
else:
    api_module = lazy_module("cardvault.clients.common.api")  # --help needs no HTTP client

__all__ = ["app", "ask_new_pin", "pin_status", "rule_of", "set_pin"]

#: PIV's own card PIN rule, what the service's answer refines per organisation
DEFAULT_RULE = "6 to 8 digits"
app = App(
    name="pin",
    help="Your card PIN for smartcard software (6 to 8 digits, or what your organisation asks).",
)

PinStdin = Annotated[
    bool,
    typer.Option(
        "--pin-stdin", help="Read the PINs from stdin, one a line (current first, if asked)."
    ),
]


def _session_api(http: httpx.Client, st: state.AgentState) -> CardvaultApi:
    api = api_module.CardvaultApi(http)
    api.use_channel(st.channel_id, st.channel_key)  # the session's channel (§3.5)
    return api


def pin_status(api: CardvaultApi, st: state.AgentState) -> Reply:
    claims: JsonObject = {"token": st.token, "session_key": st.session_key}
    return api.session_call("/api/v1/piv/pin/status", claims)


def set_pin(
    api: CardvaultApi, st: state.AgentState, new_pin: str, current_pin: str | None = None
) -> Reply:
    claims: JsonObject = {"token": st.token, "session_key": st.session_key, "new_pin": new_pin}
    if current_pin is not None:
        claims["current_pin"] = current_pin
    return api.session_call("/api/v1/piv/pin", claims)


def _read(prompt: str, from_stdin: bool) -> str:
    if from_stdin:
        value = sys.stdin.readline(64).rstrip("\r\n")
    elif sys.stdin.isatty():
        value = getpass.getpass(prompt)
    else:
        raise InvalidInput("Cannot prompt for the card PIN: use --pin-stdin.")
    if not value:
        raise InvalidInput("No card PIN given.")
    return value


def rule_of(found: Reply) -> str:
    """The organisation's card PIN rule in words, as the service states it (an older
    service without it: PIV's own)."""
    return found.optional_text("rule") or DEFAULT_RULE


def ask_new_pin(from_stdin: bool, rule: str = "") -> str:
    """The new card PIN (``rule``: the organisation's, in words); at a terminal it is
    typed twice."""
    pin = _read(f"New card PIN ({rule or DEFAULT_RULE}): ", from_stdin)
    if not from_stdin and _read("The new card PIN again: ", False) != pin:
        raise InvalidInput("The two card PINs differ.")
    return pin


@app.command("status")
def status(ctx: typer.Context) -> None:
    """Whether your card has a card PIN, and whether it is blocked."""
    opts = options(ctx)
    with reported(opts.json):
        st = state.load(opts.state_dir)
        with client(opts, st.server, st.ca_file) as http:
            found = pin_status(_session_api(http, st), st)
    serial = found.text("serial")
    if not found.flag("pin_set"):
        text = f"Card {serial} has no card PIN yet: set one with `cardvault-agent pin set`."
    elif found.flag("blocked"):
        text = f"The card PIN of card {serial} is blocked." + (
            " This session may set a new one." if found.flag("may_unblock") else ""
        )
    else:
        text = f"Card {serial} has a card PIN ({found.number('attempts_left')} tries left)."
    out(opts, dict(found), text)


@app.command("change")
def change(ctx: typer.Context, pin_stdin: PinStdin = False) -> None:
    """Set or change your card PIN (asks for the current one when it is needed)."""
    opts = options(ctx)
    with reported(opts.json):
        st = state.load(opts.state_dir)
        with client(opts, st.server, st.ca_file) as http:
            api = _session_api(http, st)
            found = pin_status(api, st)
            if found.flag("blocked") and not found.flag("may_unblock"):
                raise PermissionDenied(
                    "Your card PIN is blocked after three wrong tries.",
                    remedy="Sign in again with your passcode and second factor "
                    "(cardvault-agent logout, then login), then set a new card PIN.",
                )
            needs_current = found.flag("pin_set") and not found.flag("may_unblock")
            current = _read("Current card PIN: ", pin_stdin) if needs_current else None
            result = set_pin(api, st, ask_new_pin(pin_stdin, rule_of(found)), current)
    words = {"set": "set", "changed": "changed", "unblocked": "unblocked and changed"}
    outcome = result.text("outcome")
    out(
        opts,
        dict(result),
        f"Card PIN of card {result.text('serial')} {words.get(outcome, outcome)}.",
    )


app.command("set", help="Set your card PIN (the same as `change`).")(change)
