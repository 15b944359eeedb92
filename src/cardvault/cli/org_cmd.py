"""Organisations: create, list, show, change policy."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from cardvault.cli.common import emit, handles_errors, operator, runtime, warn
from cardvault.commandline import App
from cardvault.errors import InvalidInput
from cardvault.services import directory
from cardvault.store.models import Organisation

app = App(help="Organisations and their policies.")


def org_dict(org: Organisation) -> dict[str, Any]:
    return {
        "code": org.code,
        "name": org.name,
        "networks": org.allowed_networks,
        "policy": org.policy,
        "created_at": org.created_at.isoformat(),
    }


def _policy(text: str | None) -> dict[str, Any] | None:
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
) -> None:
    """Create an organisation; its people sign in only from the networks given with --network."""
    with runtime(ctx) as rt:
        org = directory.create_organisation(
            rt, operator(), code=code, name=name, networks=network or [], policy=_policy(policy)
        )
    emit(ctx, org_dict(org), f"Created organisation {org.code} ({org.name}).")
    if not org.allowed_networks:
        warn(no_networks_warning(org.code))


def no_networks_warning(code: str) -> str:
    return (
        f"{code} allows no client networks, so nobody can sign in to it from anywhere. "
        f"Add its networks with `cardvault org networks` (see `cardvault org networks --help`)."
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
                f"networks: {', '.join(org.allowed_networks) or 'none'}",
                "policy:",
                json.dumps(org.policy, indent=2),
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
