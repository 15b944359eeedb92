"""The accessibility statement of a browser area, linked from every page's footer.

Public-sector services publish one (the Public Sector Bodies Accessibility Regulations 2018):
how accessible the pages are, what was tested, the time limits, and how to report a problem.
The contact is the operator's (``CARDVAULT_ACCESSIBILITY_CONTACT``); docs/ra/guide.md
("Accessibility statement") has the same text for the guides.
"""

# no "from __future__ import annotations": FastAPI must see the closures' dependencies
# (Depends(session)) as objects, not as strings it cannot resolve at module level
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from cardvault.services.signin.web_sessions import WebSessionView
from cardvault.services.system.runtime import Runtime
from cardvault.web.deps import runtime
from cardvault.web.ui.session import WebArea
from cardvault.web.ui.templating import render
from cardvault.web.ui.timeout import WARN_SECONDS


def router(area: WebArea, session: Callable[[Request], WebSessionView]) -> APIRouter:
    routes = APIRouter(prefix=area.prefix, include_in_schema=False)

    @routes.get("/accessibility")
    def statement(
        request: Request,
        rt: Annotated[Runtime, Depends(runtime)],
        view: Annotated[WebSessionView, Depends(session)],
    ) -> Response:
        return render(
            request,
            "ui/accessibility.html",
            contact=rt.settings.accessibility_contact,
            warn_minutes=WARN_SECONDS // 60,
        )

    return routes
