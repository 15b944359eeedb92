"""Persons and RA roles."""

from __future__ import annotations

from typing import Annotated

import typer

from cardvault.cli.context import emit, handles_errors, operator, runtime
from cardvault.commandline import App
from cardvault.json_types import JsonObject, JsonValue
from cardvault.services.directory import registry as directory
from cardvault.services.directory.views import PersonView

app = App(help="Persons (card holders and RA users).")
ra_app = App(help="RA roles per organisation.")


def person_dict(p: PersonView) -> JsonObject:
    return {
        "user_id": p.user_id,
        "forename": p.forename,
        "surname": p.surname,
        "email": p.email,
        "phone": p.phone,
        "common_name": p.common_name,
    }


@app.command("create")
@handles_errors
def create(
    ctx: typer.Context,
    user_id: Annotated[str, typer.Option("--user-id", help="12-digit national user id.")],
    forename: Annotated[str, typer.Option()],
    surname: Annotated[str, typer.Option()],
    email: Annotated[str | None, typer.Option()] = None,
    phone: Annotated[str | None, typer.Option()] = None,
    common_name: Annotated[str | None, typer.Option(help="Default: forename surname.")] = None,
    org: Annotated[
        list[str] | None,
        typer.Option("--org", help="Organisation code to join; repeat for several."),
    ] = None,
) -> None:
    """Create a person as in the national directory."""
    with runtime(ctx) as rt:
        person = directory.create_person(
            rt,
            operator(),
            directory.NewPerson(
                user_id=user_id,
                forename=forename,
                surname=surname,
                email=email,
                phone=phone,
                common_name=common_name,
                organisations=tuple(org or ()),
            ),
        )
    emit(ctx, person_dict(person), f"Created {person.common_name} ({person.user_id}).")


@app.command("show")
@handles_errors
def show(ctx: typer.Context, user_id: str) -> None:
    """Show a person, their organisations and RA roles."""
    with runtime(ctx) as rt:
        details = directory.show_person(rt, user_id)
    person = details.person
    organisations: list[JsonValue] = list(details.organisations)
    roles: list[JsonValue] = [
        {"organisation": r.organisation, "role": r.role} for r in details.roles
    ]
    data: JsonObject = {**person_dict(person), "organisations": organisations, "ra_roles": roles}
    emit(
        ctx,
        data,
        lambda: "\n".join(
            [
                f"{person.common_name} ({person.user_id}) <{person.email or 'no email'}>",
                f"organisations: {', '.join(details.organisations) or 'none'}",
            ]
            + [f"RA role: {r.role} in {r.organisation}" for r in details.roles]
        ),
    )


@app.command("add-org")
@handles_errors
def add_org(ctx: typer.Context, user_id: str, org: str) -> None:
    """Make a person a member of another organisation (their card works there too)."""
    with runtime(ctx) as rt:
        directory.add_membership(rt, operator(), user_id, org)
    emit(
        ctx,
        {"user_id": user_id, "organisation": org.upper()},
        f"{user_id} is a member of {org.upper()}.",
    )


@ra_app.command("grant")
@handles_errors
def grant(
    ctx: typer.Context,
    user_id: str,
    org: str,
    role: Annotated[str, typer.Argument(help="ra_manager, ra_agent or auditor")],
) -> None:
    """Grant an RA role in an organisation."""
    with runtime(ctx) as rt:
        directory.grant_role(rt, operator(), user_id=user_id, org_code=org, role=role)
    emit(
        ctx,
        {"user_id": user_id, "organisation": org.upper(), "role": role},
        f"Granted {role} in {org.upper()} to {user_id}.",
    )


@ra_app.command("revoke")
@handles_errors
def revoke(ctx: typer.Context, user_id: str, org: str, role: str) -> None:
    """Revoke an RA role."""
    with runtime(ctx) as rt:
        directory.revoke_role(rt, operator(), user_id=user_id, org_code=org, role=role)
    emit(
        ctx,
        {"user_id": user_id, "organisation": org.upper(), "role": role, "revoked": True},
        f"Revoked {role} in {org.upper()} from {user_id}.",
    )
