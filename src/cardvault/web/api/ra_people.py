"""The RA API for running an organisation (issue 19): people, CSV import, another
organisation's person, leavers, settings, RA roles and card approvals.

The same services as the vRA Manager's pages; errors are problem details (web/errors.py).
A CSV file is sent as the raw request body (``text/csv``), so that a file in the wrong
encoding reaches the check as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from pydantic import JsonValue as WireJson

from cardvault.json_types import as_json
from cardvault.services.ra import approvals as ra_approvals
from cardvault.services.ra import leavers
from cardvault.services.ra import people as ra_people
from cardvault.services.ra import persons as ra_persons
from cardvault.services.ra import roles as ra_roles
from cardvault.services.ra import settings as ra_settings
from cardvault.web.api.ra_gate import Manager, PeopleManager, RoleGranter, Sponsor, Viewer
from cardvault.web.deps import RuntimeDep

router = APIRouter(prefix="/api/v1/ra", tags=["ra"])
Rt = RuntimeDep


class PersonIn(BaseModel):
    user_id: str = Field(max_length=20)
    forename: str = Field(max_length=100)
    surname: str = Field(max_length=100)
    email: str = Field(default="", max_length=254)
    mobile: str = Field(default="", max_length=30)


class ExistingIn(BaseModel):
    user_id: str = Field(max_length=20)
    email: str = Field(max_length=254)


class LeaverIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class SettingsIn(BaseModel):
    allowed_methods: list[str] = Field(max_length=20)
    numbers: dict[str, str | int] = Field(max_length=20)
    switches: dict[str, bool] = Field(max_length=20)
    #: the second factors allowed (sign-in and reset); left out: unchanged
    second_factors: list[str] | None = Field(default=None, max_length=10)


class GrantIn(BaseModel):
    user_id: str = Field(max_length=20)
    role: str = Field(max_length=20)


# --- answers -------------------------------------------------------------------------------


class PersonFound(BaseModel):
    user_id: str
    name: str
    email: str | None
    card_serial: str | None
    card_status: str | None


class PersonOut(BaseModel):
    user_id: str
    name: str


class ImportRow(BaseModel):
    line: int
    user_id: str | None
    problems: list[str]


class ImportOut(BaseModel):
    """A CSV file checked or imported: who was created, and each row's problems."""

    created: list[str]
    problem: str | None
    rows: list[ImportRow]


class LeaverOut(BaseModel):
    card_revoked: bool
    methods_removed: int
    still_in: list[str]


class SettingsOut(BaseModel):
    allowed_methods: list[str]
    numbers: dict[str, int]
    switches: dict[str, bool]
    second_factors: list[str]


class SettingChange(BaseModel):
    old: WireJson
    new: WireJson


class SettingsChanged(BaseModel):
    changed: dict[str, SettingChange]


class RoleHeldOut(BaseModel):
    user_id: str
    role: str


class PendingGrantOut(BaseModel):
    id: str
    user_id: str
    role: str
    mine: bool


class RoleGrantsOut(BaseModel):
    held: list[RoleHeldOut]
    pending: list[PendingGrantOut]
    needs_approval: bool


class ApprovalOut(BaseModel):
    user_id: str
    name: str
    approved: bool


@router.get("/people")
def find_people(rt: Rt, ctx: Viewer, q: str = "") -> list[PersonFound]:
    """People of your organisation by name, email, user id or card serial."""
    return [
        PersonFound(user_id=p.user_id, name=p.name, email=p.email, card_serial=p.card_serial,
                    card_status=p.card_status)
        for p in ra_persons.find(rt, ctx, q)
    ]  # fmt: skip


@router.post("/people", status_code=201)
def create_person(body: PersonIn, rt: Rt, ctx: PeopleManager) -> PersonOut:
    """A new person in your organisation."""
    member = ra_people.new_member(**body.model_dump())
    person = ra_people.create(rt, ctx, member)
    return PersonOut(user_id=person.user_id, name=person.common_name)


@router.post(
    "/people/import",
    openapi_extra={"requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def import_people(
    request: Request, rt: Rt, ctx: PeopleManager, mode: Literal["check", "all", "good"] = "check"
) -> ImportOut:
    """Check a CSV file (``mode=check``, the default: nothing is written), import it whole
    (``all``: refused when any row has a problem) or its good rows only (``good``)."""
    data = await _body(request)
    if mode == "check":
        check = ra_people.check_csv(rt, ctx, data)
        return _import_out((), check)
    result = ra_people.import_csv(rt, ctx, data, good_rows_only=mode == "good")
    return _import_out(result.created, result.check)


async def _body(request: Request) -> bytes:
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) > ra_people.MAX_BYTES:
            break
    return data


def _import_out(created: Sequence[str], check: ra_people.ImportCheck) -> ImportOut:
    return ImportOut(
        created=list(created),
        problem=check.problem,
        rows=[
            ImportRow(line=r.line, user_id=r.user_id, problems=list(r.problems)) for r in check.rows
        ],
    )


@router.post("/people/add")
def add_existing(body: ExistingIn, rt: Rt, ctx: PeopleManager) -> PersonOut:
    """Add a person of another organisation to yours (their one card works here too)."""
    person = ra_people.add_existing(rt, ctx, body.user_id, body.email)
    return PersonOut(user_id=person.user_id, name=person.common_name)


@router.post("/people/{user_id}/leave")
def leave(user_id: str, body: LeaverIn, rt: Rt, ctx: PeopleManager) -> LeaverOut:
    """The person has left your organisation (see the RA guide for what happens)."""
    result = leavers.leave(rt, ctx, user_id, body.reason)
    return LeaverOut(card_revoked=result.card_revoked, methods_removed=result.methods_removed,
                     still_in=list(result.still_in))  # fmt: skip


@router.get("/settings")
def show_settings(rt: Rt, ctx: Manager) -> SettingsOut:
    """Your organisation's settings."""
    view = ra_settings.show(rt, ctx)
    return SettingsOut(allowed_methods=list(view.allowed_methods), numbers=view.numbers,
                       switches=view.switches,
                       second_factors=list(view.second_factors))  # fmt: skip


@router.put("/settings")
def change_settings(body: SettingsIn, rt: Rt, ctx: Manager) -> SettingsChanged:
    """Change the settings (each change audited with its old and new value)."""
    changes = ra_settings.change(
        rt,
        ctx,
        ra_settings.SettingsForm(
            allowed_methods=tuple(body.allowed_methods),
            numbers={k: str(v) for k, v in body.numbers.items()},
            switches=body.switches,
            second_factors=tuple(body.second_factors) if body.second_factors is not None else None,
        ),
    )
    return SettingsChanged(
        changed={c.name: SettingChange(old=as_json(c.old), new=as_json(c.new)) for c in changes}
    )


@router.get("/role-grants")
def role_grants(rt: Rt, ctx: RoleGranter) -> RoleGrantsOut:
    """Who holds which RA role here, and grants waiting for a second RA manager."""
    page = ra_roles.page(rt, ctx)
    return RoleGrantsOut(
        held=[RoleHeldOut(user_id=h.user_id, role=h.role) for h in page.held],
        pending=[
            PendingGrantOut(id=p.id, user_id=p.user_id, role=p.role, mine=p.mine)
            for p in page.pending
        ],
        needs_approval=page.needs_approval,
    )


@router.post("/role-grants")
def grant_role(body: GrantIn, rt: Rt, ctx: RoleGranter) -> dict[str, str]:
    """Give a role (it may wait for a second RA manager)."""
    granted = ra_roles.grant(rt, ctx, body.user_id, body.role)
    return {"status": "granted" if granted else "pending"}


@router.post("/role-grants/withdraw")
def withdraw_role(body: GrantIn, rt: Rt, ctx: RoleGranter) -> dict[str, str]:
    """Take a role away."""
    ra_roles.take_away(rt, ctx, body.user_id, body.role)
    return {"status": "withdrawn"}


@router.post("/role-grants/requests/{request_id}/{decision}")
def decide_grant(
    request_id: str, decision: Literal["approve", "refuse"], rt: Rt, ctx: RoleGranter
) -> dict[str, str]:
    """Approve or refuse a waiting grant (not one you asked for)."""
    ra_roles.decide(rt, ctx, request_id, approve=decision == "approve")
    return {"status": "approved" if decision == "approve" else "refused"}


@router.get("/approvals")
def approvals(rt: Rt, ctx: Sponsor) -> list[ApprovalOut]:
    """People of your organisation without a card, and whether a card is approved."""
    return [
        ApprovalOut(user_id=p.user_id, name=p.name, approved=p.approved_at is not None)
        for p in ra_approvals.page(rt, ctx).people
    ]


@router.post("/approvals/{user_id}")
def approve(user_id: str, rt: Rt, ctx: Sponsor) -> dict[str, str]:
    """Approve a card for a person of your organisation."""
    ra_approvals.approve(rt, ctx, user_id)
    return {"status": "approved"}
