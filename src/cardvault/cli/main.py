"""The ``cardvault`` admin command: the root, its global options and the command groups.

The command line starts fast (issue 16: ``cardvault --help`` within 0.3 s): ``run()``
imports a group's module -- and with it the services, SQLAlchemy, Jinja… -- only when that
group is invoked; the root help lists the groups from the short help kept here (a unit test
checks it against the groups' own). ``app`` (the whole tree, every module imported) is built
on first use, for tests and documentation.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.main

from cardvault.commandline import App, Group, exit_codes_epilog, version_option

if TYPE_CHECKING:
    from typer._click import Command, Context

#: the root's commands, in the order they are listed: name -> (module, Typer attribute or
#: None for a command that service_cmd registers on the root, help as the command gives it)
COMMANDS: dict[str, tuple[str, str | None, str]] = {
    "init": (
        "service_cmd",
        None,
        "Create a data directory: master key, database, keys, TLS certificate, issuing CA.",
    ),
    "serve": (
        "service_cmd",
        None,
        "Serve the API, the vRA Manager (/ra) and the portal (/portal) over HTTPS; refuses "
        "to\n    start sealed.",
    ),
    "unseal": (
        "service_cmd",
        None,
        "Combine K key shares so the service can start (the key is kept in RAM-backed storage).",
    ),
    "seal": (
        "service_cmd",
        None,
        "Forget the unsealed master key; the service will not start until unsealed again.",
    ),
    "backup": (
        "backup_cmd",
        None,
        "Back up the database (one consistent snapshot) and the sealed key material, "
        "encrypted to your key.",
    ),
    "restore": (
        "backup_cmd",
        None,
        "Restore a backup into a new data directory and an empty database.",
    ),
    "db": ("service_cmd", None, "Database schema."),
    "keys": ("keys_cmd", "app", "Master-key custody and key rotation."),
    "org": ("org_cmd", "app", "Organisations and their policies."),
    "person": ("person_cmd", "app", "Persons (card holders and RA users)."),
    "ra": ("person_cmd", "ra_app", "RA roles per organisation."),
    "card": ("card_cmd", "app", "Virtual smartcards."),
    "ca": ("ca_cmd", "app", "The issuing CA and certificates from an external CA."),
    "audit": ("audit_cmd", "app", "The audit trail."),
    "method": ("method_cmd", "app", "Authentication methods associated with cards."),
    "rp": ("rp_cmd", "app", "The example relying party (stands in for a national system)."),
    "notify": ("notify_cmd", "app", "Email and SMS notifications (the outbox)."),
    "maintenance": (
        "maintenance_cmd",
        "app",
        "Housekeeping: erase leavers after their organisation's retention period.",
    ),
}


def _root(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            envvar="CARDVAULT_DATA_DIR",
            help="Data directory (keys, database, outbox). Default: ./data",
        ),
    ] = None,
    json_output: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print machine-readable JSON instead of text (errors too, on stderr). "
            "Give it before the command: cardvault --json card show SERIAL.",
        ),
    ] = False,
    version: Annotated[bool, version_option("cardvault")] = False,
) -> None:
    from cardvault.cli.context import State  # a command runs: now it is needed

    ctx.obj = State(data_dir=data_dir, json=json_output)


def _new_root(cls: type[Group] = Group) -> App:
    root = App(
        name="cardvault",
        help="Run and administer cardvault, the virtual smartcard service.",
        epilog=exit_codes_epilog(),
        cls=cls,
    )
    root.callback()(_root)
    return root


def _module(name: str) -> Any:
    return importlib.import_module(f"cardvault.cli.{name}")


_method_ready = False


def _typer_of(name: str) -> typer.Typer:
    """The Typer group ``name`` (the method group also carries the device commands)."""
    global _method_ready
    module, attribute, _help = COMMANDS[name]
    sub: typer.Typer = getattr(_module(module), attribute or "app")
    if name == "method" and not _method_ready:
        _module("device_cmd").register(sub)
        _method_ready = True
    return sub


def _whole() -> App:
    """Every group and command, every module imported."""
    root = _new_root()
    _module("service_cmd").register(root)
    _module("backup_cmd").register(root)
    for name, (_module_name, attribute, _help) in COMMANDS.items():
        if attribute is not None:
            root.add_typer(_typer_of(name), name=name)
    return root


class _LazyRoot(Group):
    """The root group: a subcommand's module is imported when that subcommand is resolved."""

    def list_commands(self, ctx: Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            if getattr(ctx, "resilient_parsing", False) or _listing(ctx):
                return _placeholder(cmd_name)
            self.commands[cmd_name] = _load(cmd_name)
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: Context, args: list[str]) -> Any:
        name = args[0] if args else ""
        if name in COMMANDS and name not in self.commands:
            self.commands[name] = _load(name)
        return super().resolve_command(ctx, args)


def _listing(ctx: Context) -> bool:
    """True while the root's own help is written (it only needs each command's help)."""
    return bool(getattr(ctx, "meta", {}).get("cardvault.listing"))


def _placeholder(name: str) -> Command:
    from typer.core import TyperCommand

    return TyperCommand(name, help=COMMANDS[name][2])


def _load(name: str) -> Command:
    module, attribute, _help = COMMANDS[name]
    if attribute is None:
        holder = App()
        _module(module).register(holder)
        command = typer.main.get_group(holder).commands[name]
    else:
        command = typer.main.get_group(_typer_of(name))  # a group even with one command
    command.name = name
    return command


class _ListingRoot(_LazyRoot):
    def format_help(self, ctx: Context, formatter: Any) -> None:
        ctx.meta["cardvault.listing"] = True
        try:
            super().format_help(ctx, formatter)
        finally:
            ctx.meta.pop("cardvault.listing", None)


def __getattr__(name: str) -> Any:
    if name == "app":
        whole = _whole()
        globals()["app"] = whole
        return whole
    raise AttributeError(name)


def run() -> None:
    root = _new_root(_ListingRoot)
    command = typer.main.get_command(root)
    command()
