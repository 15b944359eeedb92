"""The service's front door: ``/`` says what cardvault is and where its parts are, and
``/favicon.ico`` answers the request every browser makes for the site's icon."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from cardvault.web import ui
from cardvault.web.deps import runtime_of
from cardvault.web.ui.templating import STATIC

router = APIRouter(include_in_schema=False)
ICON_CACHE = {"Cache-Control": "public, max-age=86400"}


@router.get("/")
def home(request: Request) -> Response:
    return ui.render(request, "home.html", development=runtime_of(request).settings.development)


@router.get("/favicon.ico")
def favicon() -> Response:
    return FileResponse(
        STATIC / "ui" / "favicon.ico", media_type="image/vnd.microsoft.icon", headers=ICON_CACHE
    )
