"""Health and the transport key set."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from cardvault import __version__
from cardvault.crypto.envelope import jwks
from cardvault.services.system import health
from cardvault.services.system.runtime import Runtime
from cardvault.services.transport import keys as transport_keys
from cardvault.web.deps import runtime

router = APIRouter()


class Health(BaseModel):
    status: str
    version: str
    database: str
    audit_anchor: str
    sealed: bool


@router.get("/api/v1/health", response_model=Health, tags=["system"])
def get_health(rt: Annotated[Runtime, Depends(runtime)]) -> Health:
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


@router.get("/.well-known/jwks.json", tags=["system"])
def get_jwks(rt: Annotated[Runtime, Depends(runtime)]) -> dict[str, Any]:
    """The transport keys clients encrypt sensitive payloads to (DESIGN §3.5)."""
    return jwks(transport_keys.keys(rt).values())
