"""The self-service portal under ``/portal`` (DESIGN §3.3): the card holder's own pages.

A holder reaches it from an email: the lock email or a reset link (answer the questions,
confirm a second factor — a push to the paired phone, the security key, or a one-time
code — choose a new passcode), or an invitation (confirm the SMS code,
choose a passcode and security questions, then pair the phone or register a security key).
"Forgotten your passcode?" asks for a link. "My card" (``/portal/card``) is for a holder
signed in with their card: passcode, security questions, recovery code, phones and keys,
and where the card was used.
Routes parse, call one service, render; what a step needs to continue (the recovery key K)
lives only in an HttpOnly cookie of the holder's browser.
"""

from __future__ import annotations

from fastapi import FastAPI

from cardvault.web import ui
from cardvault.web.portal.card import router as card_router
from cardvault.web.portal.card_changes import router as card_changes_router
from cardvault.web.portal.dev_outbox import router as outbox_router
from cardvault.web.portal.invitation import router as invitation_router
from cardvault.web.portal.invitation_factor import router as invitation_factor_router
from cardvault.web.portal.reset import router as reset_router
from cardvault.web.portal.reset_factor import router as reset_factor_router
from cardvault.web.portal.steps import AREA, web_session

__all__ = ["AREA", "install"]


def install(app: FastAPI) -> None:
    ui.add_area(app, AREA)
    for router in (
        reset_router,
        reset_factor_router,
        invitation_router,
        invitation_factor_router,
        card_router,
        card_changes_router,
        outbox_router,
    ):
        app.include_router(router)
    ui.add_area_pages(app, AREA, web_session)
