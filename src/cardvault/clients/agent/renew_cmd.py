"""``cardvault-agent renew``: new keys and certificates for your card, in your session."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from cardvault.clients.agent import state
from cardvault.clients.agent.options import client, options, out
from cardvault.clients.common.replies import JsonObject, UnexpectedReply
from cardvault.clients.common.shell import reported
from cardvault.lazy import lazy_module

if TYPE_CHECKING:
    from cardvault.clients.common import api as api_module
else:
    api_module = lazy_module("cardvault.clients.common.api")  # --help needs no HTTP client

__all__ = ["renew"]


def renew(ctx: typer.Context) -> None:
    """Renew your card's certificates: the service makes new keys and certificates and
    revokes the old ones (superseded). Your passcode and sign-in methods stay as they are."""
    opts = options(ctx)
    with reported(opts.json):
        st = state.load(opts.state_dir)
        with client(opts, st.server, st.ca_file) as http:
            claims: JsonObject = {"token": st.token, "session_key": st.session_key}
            api = api_module.CardvaultApi(http)
            api.use_channel(st.channel_id, st.channel_key)  # the session's channel (§3.5)
            result = api.session_call("/api/v1/card/renew", claims)
        certificates = result["certificates"]
        if not isinstance(certificates, list):
            raise UnexpectedReply("The service's answer lists no certificates.")
        serial = result.text("serial")
    until = ", ".join(
        sorted({str(c.get("not_after", "?"))[:10] for c in certificates if isinstance(c, dict)})
    )
    out(opts, dict(result), f"Card {serial} renewed: new keys, certificates valid until {until}.")
