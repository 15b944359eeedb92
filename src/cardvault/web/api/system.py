"""Health, readiness, metrics and the transport key set."""

from __future__ import annotations

import json
from ipaddress import ip_address, ip_network

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from cardvault import __version__
from cardvault.services.system import health
from cardvault.services.system.metrics import CONTENT_TYPE, metrics
from cardvault.services.system.runtime import Runtime
from cardvault.services.transport import keys as transport_keys
from cardvault.web.client_address import client_address
from cardvault.web.deps import RuntimeDep
from cardvault.web.wire_json import WireObject

router = APIRouter()


class Health(BaseModel):
    status: str
    version: str
    database: str
    audit_anchor: str
    sealed: bool


@router.get("/api/v1/health", response_model=Health, tags=["system"])
def get_health(rt: RuntimeDep) -> Health:
    """Liveness and readiness: the database answers, the master key is loaded and signed
    audit heads can be anchored."""
    return Health(
        status="ok",
        version=__version__,
        database=health.database_status(rt),
        audit_anchor=health.audit_anchor_status(rt),
        sealed=False,
    )


@router.get("/healthz", tags=["system"])
def get_alive() -> dict[str, str]:
    """The process is alive (for load balancers; public, like the JWKS: see web/ingress.py)."""
    return {"status": "alive"}


@router.get("/readyz", tags=["system"])
def get_ready(rt: RuntimeDep) -> JSONResponse:
    """Ready to serve (for load balancers): 200, or 503 naming each failing check. Public,
    like /healthz; it says what is broken, never a secret."""
    state = health.readiness(rt)
    body = {
        "status": "ready" if state.ready else "not_ready",
        "failing": list(state.failing),
        "checks": {
            c.name: {"ok": c.ok} if c.ok else {"ok": False, "problem": c.problem}
            for c in state.checks
        },
    }
    return JSONResponse(body, status_code=200 if state.ready else 503)


@router.get("/metrics", tags=["system"], include_in_schema=False)
def get_metrics(request: Request, rt: RuntimeDep) -> Response:
    """Prometheus metrics, for the addresses in CARDVAULT_METRICS_NETWORKS only (the ingress
    gate lets the path through; this is its own allow-list: docs/operator/monitoring.md)."""
    if not metrics_allowed(rt, client_address(request, rt.settings.trusted_proxies)):
        return Response(status_code=404)
    return Response(metrics(rt).exposition(), media_type=CONTENT_TYPE)


def metrics_allowed(rt: Runtime, address: str | None) -> bool:
    networks = rt.memo(
        ("metrics-networks", tuple(rt.settings.metrics_networks)),
        lambda: tuple(ip_network(n) for n in rt.settings.metrics_networks),
    )
    return address is not None and any(ip_address(address) in n for n in networks)


@router.get("/.well-known/jwks.json", tags=["system"], response_model=WireObject)
async def get_jwks(rt: RuntimeDep) -> Response:
    """The transport keys clients encrypt sensitive payloads to (DESIGN §3.5)."""
    known = transport_keys.published_if_fresh(rt)  # no file access: fine on the event loop
    document = known if known is not None else await run_in_threadpool(transport_keys.published, rt)
    return Response(_encoded(document), media_type="application/json")


#: the last JWKS document sent and its JSON: every client fetches it before it signs in,
#: and it changes only when a transport key is added or retired
_last_jwks: list[tuple[WireObject, bytes]] = []


def _encoded(document: WireObject) -> bytes:
    if _last_jwks and _last_jwks[0][0] is document:
        return _last_jwks[0][1]
    body = json.dumps(document, separators=(",", ":")).encode()
    _last_jwks[:] = [(document, body)]
    return body
