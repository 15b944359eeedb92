"""What every ``cardvault-agent`` command shares: the global options and how to answer."""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import typer

from cardvault.clients.agent.state import AgentState
from cardvault.errors import CardvaultError

__all__ = ["Options", "client", "fail", "options", "out", "tls_verify", "trusted"]


@dataclass(kw_only=True)
class Options:
    server: str | None
    ca_file: Path | None
    state_dir: Path
    json: bool


def options(ctx: typer.Context) -> Options:
    obj = ctx.find_root().obj
    assert isinstance(obj, Options)
    return obj


def tls_verify(ca_file: Path | None) -> ssl.SSLContext | bool:
    """Verify against the given CA file, or the system's trust store."""
    return ssl.create_default_context(cafile=str(ca_file)) if ca_file else True


def client(opts: Options, server: str, remembered_ca: str | None = None) -> httpx.Client:
    """An HTTPS client for the service: ``--ca-file`` if given, else the CA file the login
    trusted (``remembered_ca``), else the system's trust store."""
    ca_file = opts.ca_file or (Path(remembered_ca) if remembered_ca else None)
    return httpx.Client(base_url=server, verify=tls_verify(ca_file), timeout=30.0)


def trusted(opts: Options, st: AgentState) -> AgentState:
    """The signed-in state, remembering the CA file this login trusted."""
    if opts.ca_file:
        st.ca_file = str(opts.ca_file.resolve())
    return st


def out(opts: Options, data: Any, text: str) -> None:
    typer.echo(json.dumps(data, indent=2, default=str) if opts.json else text)


def fail(exc: CardvaultError) -> typer.Exit:
    typer.secho(f"Error: {exc.diagnostics()}", err=True, fg="red")
    return typer.Exit(exc.exit_code)
