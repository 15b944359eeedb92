"""Organisations: create, list, show, change policy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from cardvault.cli.context import emit, handles_errors, operator, runtime, warn
from cardvault.commandline import App
from cardvault.domain.networks import EverywhereNeedsConfirmation
from cardvault.errors import InvalidInput
from cardvault.json_types import JsonObject
from cardvault.services.directory import registry as directory
from cardvault.services.directory.views import OrganisationView
from cardvault.services.networks import changes as org_networks

app = App(help="Organisations and their policies.")


def org_dict(org: OrganisationView) -> JsonObject:
    return {
        "code": org.code,
        "name": org.name,
        "networks": list(org.networks),
        "policy": org.policy.as_dict(),
        "created_at": org.created_at.isoformat(),
    }


def _policy(text: str | None) -> JsonObject | None:
    if text is None:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"--policy is not valid JSON: {exc.msg}.") from exc
    if not isinstance(data, dict):
        raise InvalidInput("--policy must be a JSON object.")
    return data


@app.command("create")
@handles_errors
def create(
    ctx: typer.Context,
    code: Annotated[str, typer.Argument(help="Short code, e.g. RX1 (letters, digits, - _).")],
    name: Annotated[str, typer.Argument(help="Full name, e.g. 'Leeds Teaching Hospitals'.")],
    network: Annotated[
        list[str] | None,
        typer.Option("--network", help="Allowed client network (CIDR); repeat for several."),
    ] = None,
    policy: Annotated[str | None, typer.Option(help="Policy settings as a JSON object.")] = None,
    allow_everywhere: Annotated[
        bool, typer.Option("--allow-everywhere", help="Confirm a /0 network (the internet).")
    ] = False,
) -> None:
    """Create an organisation; its people sign in only from the networks given with --network."""
    with runtime(ctx) as rt, _confirm_with_flag():
        org = directory.create_organisation(
            rt,
            operator(),
            code=code,
            name=name,
            networks=network or [],
            policy=_policy(policy),
            allow_everywhere=allow_everywhere,
        )
    emit(ctx, org_dict(org), f"Created organisation {org.code} ({org.name}).")
    if not org.networks:
        warn(no_networks_warning(org.code))


def no_networks_warning(code: str) -> str:
    return (
        f"{code} allows no client networks, so nobody can sign in to it from anywhere. "
        f"Add its networks with `cardvault org networks {code} --set CIDR…`."
    )


@app.command("list")
@handles_errors
def list_(ctx: typer.Context) -> None:
    """List organisations."""
    with runtime(ctx) as rt:
        orgs = directory.list_organisations(rt)
    emit(
        ctx,
        [org_dict(o) for o in orgs],
        lambda: "\n".join(f"{o.code:<12} {o.name}" for o in orgs) or "No organisations.",
    )


@app.command("show")
@handles_errors
def show(ctx: typer.Context, code: str) -> None:
    """Show an organisation, its networks and policy."""
    with runtime(ctx) as rt:
        org = directory.show_organisation(rt, code)
    data = org_dict(org)
    emit(
        ctx,
        data,
        lambda: "\n".join(
            [
                f"{org.code}: {org.name}",
                f"networks: {', '.join(org.networks) or 'none'}",
                "policy:",
                json.dumps(data["policy"], indent=2),
            ]
        ),
    )


@app.command("set-policy")
@handles_errors
def set_policy(
    ctx: typer.Context,
    code: str,
    policy: Annotated[str, typer.Argument(help="Settings to change, as JSON.")],
) -> None:
    """Change some of an organisation's policy settings."""
    changes = _policy(policy) or {}
    with runtime(ctx) as rt:
        org = directory.update_policy(rt, operator(), code, changes)
    emit(ctx, org_dict(org), f"Updated the policy of {org.code}.")


@app.command("networks")
@handles_errors
def networks(
    ctx: typer.Context,
    code: Annotated[str, typer.Argument(help="The organisation's code.")],
    cidrs: Annotated[
        list[str] | None, typer.Argument(metavar="[CIDR]...", help="Networks, e.g. 10.20.0.0/16.")
    ] = None,
    set_: Annotated[
        bool, typer.Option("--set", help="Replace the list with the CIDRs given.")
    ] = False,
    add: Annotated[bool, typer.Option("--add", help="Add the CIDRs given.")] = False,
    remove: Annotated[bool, typer.Option("--remove", help="Remove the CIDRs given.")] = False,
    clear: Annotated[
        bool, typer.Option("--clear", help="Remove every network: nobody reaches the service.")
    ] = False,
    allow_everywhere: Annotated[
        bool, typer.Option("--allow-everywhere", help="Confirm a /0 network (the internet).")
    ] = False,
) -> None:
    """Show an organisation's client networks, or change them (audited; every instance of
    the service applies the change within a second)."""
    change = _networks_change(list(cidrs or []), set_, add, remove, clear, allow_everywhere)
    with runtime(ctx) as rt, _confirm_with_flag():
        if change is None:
            view = org_networks.show(rt, code)
        else:
            view = org_networks.change(rt, operator(), change, code=code)
    listed = ", ".join(view.networks) or "none (nobody can reach the service for it)"
    verb = "now" if view.changed else ("unchanged" if change is not None else "")
    emit(
        ctx,
        {"code": view.code, "networks": list(view.networks), "changed": view.changed},
        f"{view.code} networks{' ' + verb if verb else ''}: {listed}",
    )


@contextmanager
def _confirm_with_flag() -> Iterator[None]:
    """A /0 is confirmed on the command line with a flag: say which."""
    try:
        yield
    except EverywhereNeedsConfirmation as exc:
        exc.remedy = "Add --allow-everywhere if that is what you mean."
        raise


def _networks_change(
    cidrs: list[str], set_: bool, add: bool, remove: bool, clear: bool, allow_everywhere: bool
) -> org_networks.NetworksChange | None:
    modes = [name for name, on in (("--set", set_), ("--add", add), ("--remove", remove),
                                   ("--clear", clear)) if on]  # fmt: skip
    if len(modes) > 1:
        raise InvalidInput(f"Use only one of {', '.join(modes)}.")
    if not modes:
        if cidrs:
            raise InvalidInput("Say what to do with the networks: --set, --add or --remove.")
        return None
    if clear:
        if cidrs:
            raise InvalidInput("--clear takes no networks; use --set to replace the list.")
        return org_networks.NetworksChange(replace=())
    if not cidrs:
        raise InvalidInput(f"{modes[0]} needs at least one network, e.g. 10.20.0.0/16.")
    if set_:
        return org_networks.NetworksChange(replace=tuple(cidrs), allow_everywhere=allow_everywhere)
    if add:
        return org_networks.NetworksChange(add=tuple(cidrs), allow_everywhere=allow_everywhere)
    return org_networks.NetworksChange(remove=tuple(cidrs))
