"""``cardvault-agent connector``: your card (or, for an RA, a blank card) in a virtual reader.

Smartcard software on this PC sees the card in pcscd's vpcd reader "Virtual PCD 00 00" for as
long as the session lasts; Ctrl-C, ``cardvault-agent logout`` or the end of the session take
it out again.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from cardvault.clients.agent import pin_cmd, state
from cardvault.clients.agent.options import Options, client, options, out
from cardvault.clients.common import prompts
from cardvault.clients.common.replies import Reply
from cardvault.clients.common.shell import reported
from cardvault.clients.connector import DEFAULT_PORT
from cardvault.errors import CardvaultError, InvalidInput
from cardvault.lazy import lazy_module

if TYPE_CHECKING:
    import hmac
    import logging

    from cardvault.clients.agent import core
    from cardvault.clients.common import api as api_module
    from cardvault.clients.common.api import CardvaultApi
    from cardvault.clients.connector import runner as runner_module
    from cardvault.clients.connector.runner import Inserted
else:  # imported when the connector runs: the agent's --help stays fast
    hmac = lazy_module("hmac")
    logging = lazy_module("logging")
    core = lazy_module("cardvault.clients.agent.core")
    api_module = lazy_module("cardvault.clients.common.api")
    runner_module = lazy_module("cardvault.clients.connector.runner")

__all__ = ["connector"]


def reader_name(port: int) -> str:
    """Debian's vpcd config: CHANNELID 0x8C7B, two slots, "Virtual PCD 00 0n" on 35963 + n."""
    slot = port - DEFAULT_PORT
    return f"Virtual PCD 00 {slot:02d}" if 0 <= slot < 2 else f"the vpcd reader on port {port}"


def connector(
    ctx: typer.Context,
    issue_for: Annotated[
        str | None,
        typer.Option(
            "--issue-for",
            help="RA: insert a blank card for this person (user id) to issue it with a card "
            "management system.",
        ),
    ] = None,
    org: Annotated[
        str | None, typer.Option("--org", help="RA: the organisation to issue the card in.")
    ] = None,
    card: Annotated[
        str | None,
        typer.Option("--card", help="Refuse to start unless the session's card is this one."),
    ] = None,
    vpcd_host: Annotated[str, typer.Option(help="Where pcscd's vpcd driver listens.")] = (
        "127.0.0.1"
    ),
    vpcd_port: Annotated[
        int, typer.Option(help="vpcd port: 35963 is reader 'Virtual PCD 00 00'.")
    ] = DEFAULT_PORT,
    poll: Annotated[
        float, typer.Option(help="Seconds between checks that the session still lives.")
    ] = 15.0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every APDU.")] = False,
    pin_stdin: Annotated[
        bool,
        typer.Option(
            "--pin-stdin",
            help="If your card has no card PIN yet, read the one to set from stdin.",
        ),
    ] = False,
) -> None:
    """Put your card into the virtual smartcard reader until the session ends (Ctrl-C: out)."""
    opts = options(ctx)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    if verbose:
        logging.getLogger("cardvault").setLevel(logging.DEBUG)
    with reported(opts.json):
        st = state.load(opts.state_dir)
        with (
            client(opts, st.server, st.ca_file) as http,
            client(opts, st.server, st.ca_file) as monitor_http,
        ):
            api = api_module.CardvaultApi(http)
            api.use_channel(st.channel_id, st.channel_key)  # the session's channel (§3.5)
            inserted = _insert(
                api, opts, st, issue_for=issue_for, org=org, card=card, pin_stdin=pin_stdin
            )
            runner = runner_module.Connector(
                api,
                inserted,
                vpcd_host=vpcd_host,
                vpcd_port=vpcd_port,
                still_signed_in=lambda: _same_session(opts, st.token),
                poll_interval=poll,
                on_answer=_progress(opts, inserted),
                monitor=api_module.CardvaultApi(monitor_http),
            )
            _announce(opts, inserted, vpcd_host, vpcd_port)
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda *_: runner.stop("stopped"))
            reason = runner.run()
    out(
        opts,
        {"removed": True, "serial": inserted.serial, "reason": reason},
        f"Card {inserted.serial} removed from the reader: {reason}.",
    )


def _insert(
    api: CardvaultApi,
    opts: Options,
    st: state.AgentState,
    *,
    issue_for: str | None,
    org: str | None,
    card: str | None,
    pin_stdin: bool = False,
) -> Inserted:
    if issue_for is None:
        if st.purpose == "ra":
            raise InvalidInput(
                "This is an RA session.",
                remedy="Use --issue-for USER_ID --org CODE to issue a card, or sign in as a "
                "card holder to use your own card.",
            )
        return _insert_own_card(api, st, card=card, pin_stdin=pin_stdin)
    if st.purpose != "ra":
        raise api_module.ServiceError(
            "Issuing a card needs an RA session.",
            remedy="Sign in with `cardvault-agent login --ra`.",
        )
    if not org:
        raise InvalidInput("Give the organisation to issue the card in with --org.")
    st = core.issuing_role(api, st, org)
    state.save(opts.state_dir, st)
    return runner_module.insert_blank(api, token=st.token, user_id=issue_for, organisation=org)


def _insert_own_card(
    api: CardvaultApi, st: state.AgentState, *, card: str | None, pin_stdin: bool
) -> Inserted:
    """The holder's card; at the first start for a card without a card PIN, the holder sets
    one first (inside this passcode + second-factor session), and the card goes in."""
    try:
        return runner_module.insert_for_holder(
            api, token=st.token, session_key=st.session_key, serial=card
        )
    except api_module.ServiceError as exc:
        if exc.problem != "piv_pin_not_set":
            raise
    rule = pin_cmd.rule_of(pin_cmd.pin_status(api, st))
    prompts.tell(
        f"Your card has no card PIN yet: choose one ({rule}). Smartcard software asks "
        "for it; it works only while you are signed in here."
    )
    pin_cmd.set_pin(api, st, pin_cmd.ask_new_pin(pin_stdin, rule))
    return runner_module.insert_for_holder(
        api, token=st.token, session_key=st.session_key, serial=card
    )


def _same_session(opts: Options, token: str) -> bool:
    """Still signed in on this PC with the same session (``logout`` removes the file)."""
    try:
        current = state.load(opts.state_dir)
    except CardvaultError:
        return False
    return hmac.compare_digest(current.token.encode(), token.encode())


def _announce(opts: Options, inserted: Inserted, host: str, port: int) -> None:
    if opts.json:
        return
    reader = reader_name(port)
    if inserted.mode == "issuance":
        typer.echo(
            f"Blank card {inserted.serial} for {inserted.holder} is in the reader "
            f'"{reader}" (vpcd {host}:{port}).\n'
            "Personalise it with your card management system, for example\n"
            f'  yubico-piv-tool -r "{reader}" -a ...\n'
            "It becomes an issued card once the management key is changed, 9A and 9C hold "
            "keys with their certificates, and PIN and PUK are set. Ctrl-C removes it."
        )
        return
    typer.echo(
        f'Card {inserted.serial} is in the reader "{reader}" (vpcd {host}:{port}) until '
        f"your session ends ({inserted.expires_at:%H:%M} UTC at the latest). Ctrl-C removes it."
    )


def _progress(opts: Options, inserted: Inserted) -> Callable[[Reply], None]:
    """At issuance, say once what is still missing and when the card is issued."""
    seen: tuple[str | None, list[str] | None] = ("blank", None)

    def show(answer: Reply) -> None:
        nonlocal seen
        if inserted.mode != "issuance" or opts.json:
            return
        status, missing = answer.optional_text("card_status"), answer.texts("missing")
        if status != seen[0] and status == "issued":
            typer.echo(f"Card {inserted.serial} is issued.")
        elif status == "blank" and missing != seen[1]:
            typer.echo("Still to do: " + "; ".join(missing))
        seen = (status, missing)

    return show
