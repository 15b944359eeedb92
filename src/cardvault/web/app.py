"""``create_app``: the one composition root of the web service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from cardvault import __version__
from cardvault.services.notifications import dispatcher
from cardvault.services.signin.engine import Engine
from cardvault.services.system.maintenance import Maintenance
from cardvault.services.system.metrics import metrics
from cardvault.services.system.runtime import Runtime
from cardvault.web import api_docs, errors, home, portal, ui, webauthn_page
from cardvault.web import pki as pki_endpoints
from cardvault.web import ra as ra_pages
from cardvault.web.api import card, devices, piv, push, ra, ra_people, system, webauthn
from cardvault.web.api import signin as auth
from cardvault.web.edge import Edge
from cardvault.web.limits import BodyLimit, JsonLimits


def create_app(rt: Runtime) -> FastAPI:
    app = FastAPI(
        lifespan=_lifespan,
        title="cardvault",
        version=__version__,
        description="Virtual smartcards: issuance, authentication and card operations.",
        openapi_url="/api/v1/openapi.json",
        docs_url=None,  # web/api_docs.py serves the vendored Swagger UI
        redoc_url=None,
        # the service reports through Prometheus and JSON logs (docs/operator/monitoring.md);
        # off, FastAPI's OpenTelemetry hooks no longer look for providers on every request
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.runtime = rt
    app.state.engine = Engine(rt)
    errors.install(app)
    # the API first: routes are matched in order, and API calls are the hot path
    for module in (system, auth, card, ra, ra_people, devices, push, piv, webauthn, webauthn_page):
        app.include_router(module.router, responses=errors.PROBLEM_RESPONSES)
    app.include_router(pki_endpoints.router, responses=errors.PROBLEM_RESPONSES)
    app.include_router(api_docs.router)
    ui.install(app)
    ra_pages.install(app)
    portal.install(app)
    app.include_router(home.router)
    # the last added runs first: the byte limit bounds what the JSON check buffers
    app.add_middleware(
        JsonLimits,
        max_depth=rt.settings.json_max_depth,
        max_bytes=rt.settings.max_body_bytes,
    )
    app.add_middleware(
        BodyLimit,
        max_bytes=rt.settings.max_body_bytes,
        own_refusals=pki_endpoints.REFUSALS,
        larger=ra_pages.UPLOADS,
    )
    # outermost: the request id, the ingress gate (a refused client reaches nothing, not
    # even the body limit), the answer's headers, the log event and metrics (web/edge.py);
    # the PC/SC relay's APDUs go from it straight to their own endpoint, inside the same
    # body and JSON limits as every route (a JOSE body, the APDUs' own, passes the JSON check
    # untouched; a hostile JSON body gets the same 400 as anywhere)
    apdus = BodyLimit(
        JsonLimits(
            piv.ApduEndpoint(rt, app.exception_handlers),
            max_depth=rt.settings.json_max_depth,
            max_bytes=rt.settings.max_body_bytes,
        ),
        max_bytes=rt.settings.max_body_bytes,
    )
    app.add_middleware(Edge, rt=rt, direct=dict.fromkeys(piv.ApduEndpoint.paths(), apdus))
    metrics(rt)  # the KDF queue's gauges exist from the first scrape
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Background work that lives as long as the server: housekeeping, sending notifications."""
    rt = app.state.runtime
    maintenance = Maintenance(rt)
    maintenance.start()
    sender = dispatcher.start_background(rt) if rt.settings.notify_dispatcher else None
    try:
        yield
    finally:
        if sender is not None:
            sender.stop()
        maintenance.stop()
