"""What every ``cardvault-agent`` command shares: the global options and how to answer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from cardvault.clients.agent.state import AgentState
from cardvault.clients.common import shell
from cardvault.clients.common.replies import JsonValue

if TYPE_CHECKING:
    import httpx

__all__ = ["Options", "client", "options", "out", "trusted"]


@dataclass(kw_only=True)
class Options:
    server: str | None
    ca_file: Path | None
    state_dir: Path
    json: bool


def options(ctx: typer.Context) -> Options:
    return shell.options_of(ctx, Options)


def client(opts: Options, server: str, remembered_ca: str | None = None) -> httpx.Client:
    """An HTTPS client for the service: ``--ca-file`` if given, else the CA file the login
    trusted (``remembered_ca``), else the system's trust store."""
    ca_file = opts.ca_file or (Path(remembered_ca) if remembered_ca else None)
    return shell.http_client(server, ca_file)


def trusted(opts: Options, st: AgentState) -> AgentState:
    """The signed-in state, remembering the CA file this login trusted."""
    if opts.ca_file:
        st.ca_file = str(opts.ca_file.resolve())
    return st


def out(opts: Options, data: JsonValue, text: str) -> None:
    shell.out(opts.json, data, text)
