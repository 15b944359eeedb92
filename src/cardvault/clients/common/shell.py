"""What every client command shares: the HTTPS client, the answer on stdout, the error on
stderr with its exit code (``--json`` for programs)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer

from cardvault.clients.common.replies import JsonValue
from cardvault.commandline import report, tls_verify
from cardvault.errors import CardvaultError
from cardvault.lazy import lazy_module

if TYPE_CHECKING:
    import httpx
else:
    httpx = lazy_module("httpx")  # a command line's --help needs no HTTP client

__all__ = ["fail", "http_client", "options_of", "out", "reported"]

T = TypeVar("T")


#: how long an idle connection to the service is kept (the service keeps it 75 s)
KEEP_ALIVE_SECONDS = 60.0


def http_client(server: str, ca_file: Path | None) -> httpx.Client:
    """An HTTPS client for the service, verified against ``ca_file`` or the system's CAs.
    An idle connection is kept a minute (the service keeps it longer), so that a connector
    relays a card's APDUs on one connection, not a TLS handshake after every pause."""
    limits = httpx.Limits(keepalive_expiry=KEEP_ALIVE_SECONDS)
    return httpx.Client(base_url=server, verify=tls_verify(ca_file), timeout=30.0, limits=limits)


def options_of(ctx: typer.Context, kind: type[T]) -> T:
    """The program's global options, which its root callback keeps on the root context."""
    obj = ctx.find_root().obj
    assert isinstance(obj, kind)
    return obj


def out(as_json: bool, data: JsonValue, text: str) -> None:
    typer.echo(json.dumps(data, indent=2, default=str) if as_json else text)


def fail(as_json: bool, exc: CardvaultError) -> typer.Exit:
    """Report the error (as JSON with --json) and give the Exit with its code."""
    return report(exc, as_json=as_json)


@contextmanager
def reported(as_json: bool) -> Iterator[None]:
    """A command's work: a cardvault error in it is reported and exits with its code."""
    try:
        yield
    except CardvaultError as exc:
        raise fail(as_json, exc) from None
