"""The audit log of the RA's organisation: filters, pages, CSV export."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from cardvault.errors import InvalidInput
from cardvault.services.ra import audit as ra_audit
from cardvault.web import ui
from cardvault.web.ra.context import Auditor, Rt

router = APIRouter(prefix="/ra", tags=["vRA Manager"], include_in_schema=False)
FIELDS = ("person", "card", "action", "outcome", "date_from", "date_to")


def _filter(request: Request) -> tuple[ra_audit.AuditFilter, dict[str, str]]:
    values = {k: request.query_params.get(k, "")[:100] for k in FIELDS}
    return ra_audit.AuditFilter(**values), values


@router.get("/audit")
def audit_log(request: Request, rt: Rt, ctx: Auditor, page: int = 1) -> Response:
    f, values = _filter(request)
    form = ui.Form(values=values)
    result = ra_audit.AuditPage(events=[], page=1, pages=1, total=0)
    try:
        result = ra_audit.search(rt, ctx, f, page)
    except InvalidInput as exc:
        form.add_exception(exc, fields={"serial": "card"}, default="person")
    query = urlencode({k: v for k, v in values.items() if v})
    return ui.render(
        request,
        "ra/audit.html",
        status=200 if form.ok else 422,
        form=form,
        result=result,
        query=query,
        ctx=ctx,
    )


@router.get("/audit.csv")
def audit_csv(request: Request, rt: Rt, ctx: Auditor) -> Response:
    f, _values = _filter(request)
    lines = list(ra_audit.export_csv(rt, ctx, f))
    return StreamingResponse(
        iter(lines),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="audit-{ctx.organisation_code}.csv"',
            "Cache-Control": "no-store",
        },
    )
