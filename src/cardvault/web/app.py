"""``create_app``: the one composition root of the web service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from cardvault import __version__
from cardvault.services.authentication import Engine
from cardvault.services.maintenance import Maintenance
from cardvault.services.runtime import Runtime
from cardvault.web import errors, ui, webauthn_page
from cardvault.web import ra as ra_pages
from cardvault.web.api import auth, card, ra, system, webauthn
from cardvault.web.limits import BodyLimit


def create_app(rt: Runtime) -> FastAPI:
    app = FastAPI(
        lifespan=_lifespan,
        title="cardvault",
        version=__version__,
        description="Virtual smartcards: issuance, authentication and card operations.",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    app.state.runtime = rt
    app.state.engine = Engine(rt)
    errors.install(app)
    ui.install(app)
    ra_pages.install(app)
    for module in (system, auth, card, ra, webauthn, webauthn_page):
        app.include_router(module.router)
    app.add_middleware(BodyLimit, max_bytes=rt.settings.max_body_bytes)
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Background work that lives as long as the server: housekeeping."""
    maintenance = Maintenance(app.state.runtime)
    maintenance.start()
    try:
        yield
    finally:
        maintenance.stop()
