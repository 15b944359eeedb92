"""What cardvault's three command-line programs share.

``cardvault``, ``cardvault-agent`` and ``cardvault-authenticator`` are built from :class:`App`,
so that each of them

* shows flags in ``--help`` without a type: Typer's help labels every option with its type,
  and ``--json <bool>`` reads as if the flag wanted a value;
* answers ``--version``;
* reports every error the same way: ``Error: …`` on stderr, or with ``--json`` the error as
  JSON on stderr — usage errors (an unknown option, a missing argument) included — and exits
  with the code :func:`exit_code_of` gives it: the one mapping of error classes to the exit
  codes of :data:`EXIT_CODES`, which end the programs' ``--help``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

import typer

# typer (0.29 and later) carries its own click; these are its command and exception classes
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
from typer.core import TyperCommand, TyperGroup, TyperOption

from cardvault import __version__
from cardvault import errors as e
from cardvault.errors import CardvaultError, InvalidInput

if TYPE_CHECKING:
    import ssl

__all__ = [
    "EXIT_CODES",
    "EXIT_CODE_OF",
    "JSON_FLAG",
    "App",
    "UsageProblem",
    "exit_code_of",
    "exit_codes_epilog",
    "report",
    "tls_verify",
    "version_option",
]

#: the global option every program takes before its command
JSON_FLAG = "--json"

#: What the exit code of a cardvault program means. Every error class maps to one of these
#: (tests/unit/test_commandline.py walks them all); ``--help`` and the operator guide print
#: this table.
EXIT_CODES: Final = MappingProxyType(
    {
        0: "success",
        1: "any other error; the agent: the service refused for another reason",
        2: "invalid input or usage: malformed, contradictory, a weak passcode",
        3: "not found or outside your organisation; the agent: not signed in",
        4: "conflict with the current state: duplicate, card locked, wrong status",
        5: "permission denied, or authentication failed",
        6: "integrity: sealed data, a signature or the audit chain did not verify",
        7: "the service is sealed: cardvault unseal",
        8: "unavailable or busy (database, audit log, mail, reader): try again",
        9: "not set up: data directory, schema, CA, audit key or key provider",
        130: "interrupted (Ctrl-C)",
    }
)

#: error category → exit code. An error exits with the code of the first class of its MRO
#: listed here; a feature's errors subclass these categories (``errors.py``), so the
#: programs' codes are this one table.
EXIT_CODE_OF: Final[Mapping[type[CardvaultError], int]] = MappingProxyType(
    {
        e.CardvaultError: 1,
        e.InvalidInput: 2,
        e.NotFound: 3,
        e.Conflict: 4,
        e.PermissionDenied: 5,
        e.AuthenticationFailed: 5,
        e.IntegrityError: 6,
        e.ServiceSealed: 7,
        e.Unavailable: 8,
        e.NotSetUp: 9,
    }
)


def exit_code_of(exc: CardvaultError | type[CardvaultError]) -> int:
    """The exit code of an error (or error class): that of the first class of its MRO in
    :data:`EXIT_CODE_OF`."""
    kind = exc if isinstance(exc, type) else type(exc)
    return next(EXIT_CODE_OF[cls] for cls in kind.__mro__ if cls in EXIT_CODE_OF)


class UsageProblem(InvalidInput):
    """The command line itself is wrong: an unknown option, a missing or bad argument."""

    code = "usage"


def report(exc: CardvaultError, *, as_json: bool) -> typer.Exit:
    """Print the error on stderr (as JSON with ``--json``); return the Exit to raise."""
    if as_json:
        typer.echo(json.dumps({"error": exc.as_dict()}, indent=2), err=True)
    else:
        typer.secho(f"Error: {exc.diagnostics()}", err=True, fg="red")
    return typer.Exit(exit_code_of(exc))


def exit_codes_epilog() -> str:
    """The exit-code table for the end of ``--help`` (``\\b`` keeps its lines as they are)."""
    width = max(len(str(code)) for code in EXIT_CODES)
    rows = [f"  {code:>{width}}  {meaning}" for code, meaning in EXIT_CODES.items()]
    return "\b\nExit codes:\n" + "\n".join(rows)


def version_option(program: str) -> Any:
    """A ``--version`` option for the root callback of ``program``."""

    def show(value: bool) -> None:
        if value:
            typer.echo(f"{program} {__version__}")
            raise typer.Exit()

    return typer.Option(
        "--version", callback=show, is_eager=True, help="Print the version and exit."
    )


def tls_verify(ca_file: Path | None) -> ssl.SSLContext | bool:
    """Verify TLS against the given CA file (``--ca-file``), or the system's trust store."""
    if ca_file is None:
        return True
    import ssl  # here, not at the top: --help needs no TLS (issue 16)

    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except OSError as exc:
        raise InvalidInput(f"Cannot read the CA file {ca_file}: {exc.strerror}.") from None
    except ssl.SSLError:
        raise InvalidInput(f"{ca_file} holds no PEM certificate to trust.") from None


def _plain_flags(params: list[Any]) -> list[Any]:
    """Flags take no value, so their help shows no type (an empty metavar)."""
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""
    return params


#: a command's help in its group's list: its first sentence, up to this many characters
_SHORT_HELP_LIMIT = 200


class Command(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return _plain_flags(super().get_params(ctx))


class Group(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return _plain_flags(super().get_params(ctx))

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """Each command with its whole short help, wrapped (click cuts it to one line)."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=_SHORT_HELP_LIMIT)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        """With ``--json``, a usage error is reported as JSON like any other error."""
        argv = list(sys.argv[1:] if args is None else args)
        if not standalone_mode or JSON_FLAG not in argv:
            return super().main(
                argv, prog_name, complete_var, standalone_mode, windows_expand_args, **extra
            )
        try:
            code = super().main(argv, prog_name, complete_var, False, windows_expand_args, **extra)
        except NoArgsIsHelpError as exc:  # no command given: the help is the answer
            exc.show()
            raise SystemExit(exc.exit_code) from None
        except ClickException as exc:
            raise SystemExit(report(_usage_problem(exc), as_json=True).exit_code) from None
        except typer.Abort:
            aborted = CardvaultError("Aborted.")
            raise SystemExit(report(aborted, as_json=True).exit_code) from None
        except Exception as exc:  # a bug: still JSON, which is what the caller parses
            failed = CardvaultError(f"Unexpected error: {type(exc).__name__}: {exc}")
            raise SystemExit(report(failed, as_json=True).exit_code) from exc
        raise SystemExit(code if isinstance(code, int) else 0)


def _usage_problem(exc: ClickException) -> CardvaultError:
    if isinstance(exc, UsageError):
        where = exc.ctx.command_path if exc.ctx is not None else None
        remedy = f"Try '{where} --help'." if where else None
        return UsageProblem(exc.format_message(), remedy=remedy)
    return CardvaultError(exc.format_message())


class App(typer.Typer):
    """A Typer app whose groups and commands render help cleanly (see the module)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", Group)
        kwargs.setdefault("no_args_is_help", True)
        kwargs.setdefault("pretty_exceptions_enable", False)
        # plain help, as click writes it: Rich's help (boxes) imports Markdown and Traceback
        # renderers, which take half of a --help's 0.4 s (issue 16: within 0.3 s)
        kwargs.setdefault("rich_markup_mode", None)
        kwargs.setdefault("context_settings", {"help_option_names": ["-h", "--help"]})
        super().__init__(**kwargs)

    def command(  # type: ignore[override]
        self, name: str | None = None, *, cls: type[TyperCommand] | None = None, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return super().command(name, cls=cls or Command, **kwargs)
