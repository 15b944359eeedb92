"""The vRA Manager: the RA's web application under ``/ra`` (server-rendered pages).

Routes parse, call one service, render; scope and permissions live in the services
(``ra_persons``, ``ra_cards``, ``ra_methods``, ``ra_audit``, ``ra_notifications``,
``ra_networks``, ``webauthn_registration``).
"""

from __future__ import annotations

from fastapi import FastAPI

from cardvault.services.ra.people import MAX_BYTES
from cardvault.web import ui
from cardvault.web.ra.audit_pages import router as audit_router
from cardvault.web.ra.cards import router as cards_router
from cardvault.web.ra.context import AREA, web_session
from cardvault.web.ra.expiry_pages import router as expiry_router
from cardvault.web.ra.methods import router as methods_router
from cardvault.web.ra.networks import router as networks_router
from cardvault.web.ra.notification_pages import router as notifications_router
from cardvault.web.ra.organisation_pages import router as organisation_router
from cardvault.web.ra.people_pages import router as people_router
from cardvault.web.ra.persons import router as persons_router
from cardvault.web.ra.second_factor import router as second_factor_router
from cardvault.web.ra.security_key_login import router as key_login_router
from cardvault.web.ra.signin import router as auth_router
from cardvault.web.ra.webauthn_api import router as webauthn_router

__all__ = ["AREA", "UPLOADS", "install"]

#: paths that take a file, and the most they take (the CSV import; the form's fields and
#: multipart framing on top of the file itself)
UPLOADS = {
    "/ra/people/import": MAX_BYTES + 64 * 1024,
    "/api/v1/ra/people/import": MAX_BYTES,
}


def install(app: FastAPI) -> None:
    ui.add_area(app, AREA)
    for router in (
        auth_router,
        second_factor_router,
        key_login_router,
        people_router,
        persons_router,
        cards_router,
        methods_router,
        webauthn_router,
        audit_router,
        notifications_router,
        expiry_router,
        networks_router,
        organisation_router,
    ):
        app.include_router(router)
    ui.add_area_pages(app, AREA, web_session)
