"""Adding people (one, many from a CSV file, one of another organisation) and leavers.

Thin routes: the service (``services/ra/people.py``, ``services/ra/leavers.py``) checks the
role, the organisation and every field; the pages show its errors in the error summary.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from cardvault.errors import CardvaultError, InvalidInput
from cardvault.services.ra import leavers
from cardvault.services.ra import people as ra_people
from cardvault.services.ra import persons as ra_persons
from cardvault.services.ra.actions import RaContext
from cardvault.services.signin.web_sessions import WebSessionView
from cardvault.services.system.runtime import Runtime
from cardvault.web import ui
from cardvault.web.ra.context import PeopleManager, Rt, View, person_url, require_recent_sign_in
from cardvault.web.ra.persons import already_sent
from cardvault.web.ui.forms import MAX_FIELD

router = APIRouter(prefix="/ra", tags=["vRA Manager"], include_in_schema=False)
FIELDS = ("user_id", "forename", "surname", "email", "mobile")
#: what the import page may be asked to do with the file
IMPORT_MODES = ("check", "all", "good")


@router.get("/people/new")
def new_page(request: Request, rt: Rt, ctx: PeopleManager) -> Response:
    require_recent_sign_in(request, rt)
    return ui.render(request, "ra/person_new.html", form=ui.Form(), ctx=ctx)


@router.post("/people/new")
async def new(request: Request, rt: Rt, view: View, ctx: PeopleManager) -> Response:
    form = await ui.checked_form(request, view)
    return await run_in_threadpool(_new, request, rt, view, ctx, form)


def _new(
    request: Request, rt: Runtime, view: WebSessionView, ctx: RaContext, form: ui.Form
) -> Response:
    require_recent_sign_in(request, rt)
    try:
        member = ra_people.new_member(**{f: form.get(f) for f in FIELDS})
    except InvalidInput as exc:
        form.add_exception(exc, fields={"phone": "mobile"}, default="user_id")
        return ui.render(request, "ra/person_new.html", status=422, form=form, ctx=ctx)
    if (done := already_sent(rt, request, view, form, "/ra/persons")) is not None:
        return done
    try:
        person = ra_people.create(rt, ctx, member)
    except CardvaultError as exc:
        return ui.refused(request, "ra/person_new.html", form, exc, default="user_id", ctx=ctx)
    ui.set_notice(rt, request, f"{person.common_name} is added to {ctx.organisation_code}.")
    return ui.redirect(person_url(person.user_id))


# --- CSV import -------------------------------------------------------------------------------


@router.get("/people/import")
def import_page(request: Request, rt: Rt, ctx: PeopleManager) -> Response:
    require_recent_sign_in(request, rt)
    form = ui.Form(values={"mode": "check"})
    return ui.render(request, "ra/people_import.html", form=form, check=None, ctx=ctx)


@router.post("/people/import")
async def import_file(request: Request, rt: Rt, view: View, ctx: PeopleManager) -> Response:
    form, data = await _upload(request, view)
    return await run_in_threadpool(_import, request, rt, ctx, form, data)


async def _upload(request: Request, view: WebSessionView) -> tuple[ui.Form, bytes]:
    """The form's text fields (CSRF checked) and the file's bytes, read with a limit."""
    async with request.form() as sent:
        values = {k: v for k, v in sent.multi_items() if isinstance(v, str)}
        form = ui.Form(values={k[:100]: v[:MAX_FIELD] for k, v in values.items()})
        ui.check_csrf(view, form)
        upload = sent.get("file")
        data = b""
        if isinstance(upload, UploadFile):
            data = await upload.read(ra_people.MAX_BYTES + 1)
    return form, data


def _import(request: Request, rt: Runtime, ctx: RaContext, form: ui.Form, data: bytes) -> Response:
    require_recent_sign_in(request, rt)
    mode = form.get("mode")
    if mode not in IMPORT_MODES:
        form.add_error("mode", "Choose what to do with the file.")
        return _import_page(request, ctx, form, None, 422)
    check = ra_people.check_csv(rt, ctx, data)
    if check.problem:
        form.add_error("file", check.problem)
        return _import_page(request, ctx, form, None, 422)
    if mode == "check":
        return _import_page(request, ctx, form, check, 200)
    try:
        result = ra_people.import_csv(rt, ctx, data, good_rows_only=mode == "good")
    except CardvaultError as exc:
        form.add_exception(exc, default="file")
        return _import_page(request, ctx, form, ra_people.check_csv(rt, ctx, data), 422)
    skipped = f"; {result.skipped} rows with problems were left out" if result.skipped else ""
    ui.set_notice(
        rt, request, f"{len(result.created)} people added to {ctx.organisation_code}{skipped}."
    )
    return ui.redirect("/ra/persons")


def _import_page(
    request: Request,
    ctx: RaContext,
    form: ui.Form,
    check: ra_people.ImportCheck | None,
    status: int,
) -> Response:
    return ui.render(
        request, "ra/people_import.html", status=status, form=form, check=check, ctx=ctx
    )


# --- a person of another organisation ---------------------------------------------------------


@router.get("/people/add")
def add_page(request: Request, rt: Rt, ctx: PeopleManager) -> Response:
    require_recent_sign_in(request, rt)
    return ui.render(request, "ra/person_add.html", form=ui.Form(), ctx=ctx)


@router.post("/people/add")
async def add(request: Request, rt: Rt, view: View, ctx: PeopleManager) -> Response:
    form = await ui.checked_form(request, view)
    return await run_in_threadpool(_add, request, rt, view, ctx, form)


def _add(
    request: Request, rt: Runtime, view: WebSessionView, ctx: RaContext, form: ui.Form
) -> Response:
    require_recent_sign_in(request, rt)
    if (done := already_sent(rt, request, view, form, "/ra/persons")) is not None:
        return done
    try:
        person = ra_people.add_existing(rt, ctx, form.get("user_id"), form.get("email"))
    except CardvaultError as exc:
        return ui.refused(request, "ra/person_add.html", form, exc, default="user_id", ctx=ctx)
    ui.set_notice(
        rt,
        request,
        f"{person.common_name} is now in {ctx.organisation_code} too; their card works here.",
    )
    return ui.redirect(person_url(person.user_id))


# --- leavers ----------------------------------------------------------------------------------


@router.get("/persons/{user_id}/leave")
def leave_page(request: Request, rt: Rt, ctx: PeopleManager, user_id: str) -> Response:
    require_recent_sign_in(request, rt)
    info = ra_persons.detail(rt, ctx, user_id)
    return ui.render(request, "ra/leaver.html", info=info, form=ui.Form(), ctx=ctx)


@router.post("/persons/{user_id}/leave")
async def leave(request: Request, rt: Rt, view: View, ctx: PeopleManager, user_id: str) -> Response:
    form = await ui.checked_form(request, view)
    return await run_in_threadpool(_leave, request, rt, view, ctx, user_id, form)


def _leave(
    request: Request, rt: Runtime, view: WebSessionView, ctx: RaContext, user_id: str, form: ui.Form
) -> Response:
    require_recent_sign_in(request, rt)
    info = ra_persons.detail(rt, ctx, user_id)
    if form.get("confirm") != "yes":
        form.add_error("confirm", f"Confirm that {info.person.name} has left.")
        return ui.render(request, "ra/leaver.html", status=422, info=info, form=form, ctx=ctx)
    if (done := already_sent(rt, request, view, form, "/ra/persons")) is not None:
        return done
    try:
        result = leavers.leave(rt, ctx, user_id, form.get("reason"))
    except CardvaultError as exc:
        return ui.refused(
            request, "ra/leaver.html", form, exc, default="reason", info=info, ctx=ctx
        )
    ui.set_notice(rt, request, _leaver_notice(result, ctx))
    return ui.redirect("/ra/persons")


def _leaver_notice(result: leavers.LeaverResult, ctx: RaContext) -> str:
    if result.card_revoked:
        return f"{result.name} has left {ctx.organisation_code}; their card is revoked."
    if result.still_in:
        return (
            f"{result.name} has left {ctx.organisation_code}; their card still works in "
            f"{', '.join(result.still_in)}."
        )
    return f"{result.name} has left {ctx.organisation_code}."
