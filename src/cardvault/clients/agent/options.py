"""What every ``cardvault-agent`` command shares: the global options and how to answer."""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import typer

from cardvault.errors import CardvaultError

__all__ = ["Options", "client", "fail", "options", "out"]


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


def client(opts: Options, server: str) -> httpx.Client:
    verify: Any = ssl.create_default_context(cafile=str(opts.ca_file)) if opts.ca_file else True
    return httpx.Client(base_url=server, verify=verify, timeout=30.0)


def out(opts: Options, data: Any, text: str) -> None:
    typer.echo(json.dumps(data, indent=2, default=str) if opts.json else text)


def fail(exc: CardvaultError) -> typer.Exit:
    typer.secho(f"Error: {exc.diagnostics()}", err=True, fg="red")
    return typer.Exit(exc.exit_code)
