"""What every command shares: settings, the runtime, output as text or JSON, errors."""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError

from cardvault.commandline import report
from cardvault.config import Settings
from cardvault.errors import CardvaultError, InvalidInput
from cardvault.services.system.runtime import Actor, Runtime, open_runtime
from cardvault.store.errors import DatabaseUnavailable, is_unavailable

P = ParamSpec("P")
R = TypeVar("R")
MAX_STDIN = 64 * 1024

#: the ``--org`` option of the commands that act in one organisation
OrgCode = Annotated[str, typer.Option("--org", help="Organisation code.")]


@dataclass(kw_only=True)
class State:
    data_dir: Path | None = None
    json: bool = False
    _settings: Settings | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = (
                    Settings(data_dir=self.data_dir) if self.data_dir is not None else Settings()
                )
            except ValidationError as exc:
                raise InvalidInput(_settings_problem(exc)) from None
        return self._settings


def _settings_problem(exc: ValidationError) -> str:
    """Name the setting (its environment variable) and what is wrong with it."""
    parts = []
    for err in exc.errors():
        where = "_".join(str(p) for p in err.get("loc", ()) if p)
        name = f"CARDVAULT_{where.upper()}" if where else "the settings"
        parts.append(f"{name}: {err.get('msg', 'invalid')}")
    return "Invalid settings: " + "; ".join(parts) + "."


def state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    assert isinstance(obj, State)
    return obj


def operator() -> Actor:
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = str(os.getuid())
    return Actor.operator(name)


@contextmanager
def runtime(ctx: typer.Context) -> Iterator[Runtime]:
    rt = open_runtime(state(ctx).settings)
    try:
        yield rt
    finally:
        rt.close()


def emit(ctx: typer.Context, data: Any, text: str | Callable[[], str]) -> None:
    """Print JSON with --json, else the human text."""
    if state(ctx).json:
        typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        typer.echo(text() if callable(text) else text)


def progress(ctx: typer.Context, message: str) -> None:
    """Progress for long work goes to stderr, so --json output stays parseable."""
    typer.echo(message, err=True)


def warn(message: str) -> None:
    """What the operator may not have meant, on stderr (the command still succeeded)."""
    typer.secho(f"Warning: {message}", err=True, fg="yellow")


#: what an operator checks when the CLI cannot reach the database (the URL may hold a
#: password, so the message never repeats it)
_DATABASE_REMEDY = (
    "Check that the database named by CARDVAULT_DATABASE_URL is running and reachable "
    "from here, then run the command again."
)


def handles_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Map cardvault errors to a message (or JSON) on stderr and the error's exit code; a
    database the driver cannot reach is DatabaseUnavailable (exit 8), not a traceback."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except CardvaultError as exc:
            raise report(exc, as_json=_wants_json(kwargs.get("ctx"))) from None
        except DBAPIError as exc:
            if not is_unavailable(exc):
                raise
            down = DatabaseUnavailable(remedy=_DATABASE_REMEDY)
            raise report(down, as_json=_wants_json(kwargs.get("ctx"))) from None

    return wrapper


def _wants_json(ctx: object) -> bool:
    # Typer passes click's base Context, not typer.Context: look for the root State instead
    find_root = getattr(ctx, "find_root", None)
    obj = find_root().obj if callable(find_root) else None
    return isinstance(obj, State) and obj.json


def read_secret(prompt: str, *, from_stdin: bool, stdin_option: str = "--passcode-stdin") -> str:
    """A secret from stdin (one line) or a hidden prompt; never from an argument.

    ``stdin_option`` names the command's own option for stdin, so the remedy of a refused
    prompt tells the operator what this command accepts."""
    if from_stdin:
        line = sys.stdin.readline(MAX_STDIN + 1)
        if len(line) > MAX_STDIN:
            raise InvalidInput("The input on stdin is too long.")
        value = line.rstrip("\r\n")
        if not value:
            raise InvalidInput(f"No {prompt.lower()} on stdin.")
        return value
    if not sys.stdin.isatty():
        raise InvalidInput(
            f"Cannot prompt for the {prompt.lower()}: stdin is not a terminal.",
            remedy=f"Pass it on stdin with {stdin_option}.",
        )
    return getpass.getpass(f"{prompt}: ")


def read_stdin_json() -> Any:
    data = sys.stdin.read(MAX_STDIN + 1)
    if len(data) > MAX_STDIN:
        raise InvalidInput("The JSON on stdin is larger than 64 KiB.")
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"The input on stdin is not valid JSON: {exc.msg} at line "
            f"{exc.lineno}, column {exc.colno}."
        ) from exc
