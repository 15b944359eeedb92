"""The ingress gate (DESIGN §3.6, revised): a request from outside every organisation's
networks reaches only the public endpoints and the self-service portal.

Three doors, decided by path before any route runs:

- ``PUBLIC``: reachable from anywhere — the transport key set, the CA certificate, health,
  static assets, and the PKI endpoints under ``/pki/`` (CRL, OCSP, caIssuers).
- ``PORTAL``: the self-service portal, where a locked-out holder resets from home: reachable
  from the organisations' networks and from ``CARDVAULT_PORTAL_NETWORKS`` (default:
  everywhere). Not its development outbox, which is ``SERVICE``.
- ``SERVICE``: everything else (the API, the vRA Manager, devices, unknown paths): only from
  the organisations' networks.

A refusal names no organisation and does not say whether any exists. The per-organisation
check in the services still runs on every use of a card; this gate is the outer wall.
"""

from __future__ import annotations

import re
from enum import Enum

import anyio.to_thread
from fastapi import Request
from starlette.responses import Response
from starlette.types import Scope

from cardvault.errors import Unavailable
from cardvault.services.networks import ingress
from cardvault.services.system.runtime import Runtime
from cardvault.web.client_address import scope_client_ip
from cardvault.web.errors import problem, problem_of
from cardvault.web.ui.errors import area_of
from cardvault.web.ui.templating import render

#: reachable from anywhere, exactly these paths (the public PKI and health endpoints)
PUBLIC_PATHS = frozenset(
    {
        "/.well-known/jwks.json",  # the transport keys clients encrypt to
        "/api/v1/ca",  # the issuing CA certificate
        "/healthz",  # alive, for load balancers (which may sit outside every network)
        "/readyz",  # ready, for load balancers: names failing checks, no secrets
        "/metrics",  # Prometheus: its own allow-list, CARDVAULT_METRICS_NETWORKS
        "/",  # the landing page: the service's name and links, no data
        "/favicon.ico",
        "/pki/ocsp",  # OCSP by POST (DESIGN §3.9); GET puts the request under /pki/ocsp/
    }
)
#: reachable from anywhere, everything under these (files; the CRL, OCSP and CA certificate)
PUBLIC_PREFIXES = ("/static/", "/pki/")
#: the self-service portal and what its pages fetch (its scripts call only /portal/api/…)
PORTAL_PREFIXES = ("/portal",)
#: not the portal's, though under it: the development outbox shows every link and code sent
NOT_PORTAL_PREFIXES = ("/portal/dev",)

TITLE = "This service is not available from your network"
REMEDY = (
    "Connect from your organisation's network (its Wi-Fi or VPN), or ask your "
    "Registration Authority."
)
_AREA_SEGMENT = re.compile(r"[a-z0-9._-]{1,40}")


class Door(Enum):
    PUBLIC = "public"
    PORTAL = "portal"
    SERVICE = "service"


def _under(path: str, prefix: str) -> bool:
    return path == prefix.rstrip("/") or path.startswith(prefix.rstrip("/") + "/")


def door_of(path: str) -> Door:
    if path in PUBLIC_PATHS or any(path.startswith(p) for p in PUBLIC_PREFIXES):
        return Door.PUBLIC
    if any(_under(path, p) for p in PORTAL_PREFIXES) and not any(
        _under(path, p) for p in NOT_PORTAL_PREFIXES
    ):
        return Door.PORTAL
    return Door.SERVICE


def area_label(path: str) -> str:
    """Where a refused request was going, for the audit event: the first segments only
    (``/api/v1/auth``, ``/ra``) — paths carry link tokens, which must not be logged."""
    parts = [p for p in path.split("/") if p][:3]
    depth = 3 if parts[:2] == ["api", "v1"] else 1
    kept = [p for p in parts[:depth] if _AREA_SEGMENT.fullmatch(p)]
    return "/" + "/".join(kept) if kept else "/"


class IngressGate:
    """Admit or refuse each request by its client address and door. Not a middleware of
    its own: :class:`cardvault.web.edge.Edge` asks it first, for every request."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def refusal(self, scope: Scope) -> Response | None:
        """None to admit the request; else the answer that refuses it (already audited)."""
        door = door_of(str(scope.get("path", "")))
        if door is Door.PUBLIC:
            return None
        ip = scope_client_ip(scope, self.rt.settings.trusted_proxies)
        try:
            admission = await self._admission()
        except Unavailable as exc:
            return _unavailable(scope, exc)
        allowed = admission.portal if door is Door.PORTAL else admission.organisations
        if ip is not None and ip in allowed:
            return None
        await self._audit(scope, None if ip is None else str(ip))
        portal_open = door is Door.SERVICE and ip is not None and ip in admission.portal
        return _refusal(scope, portal_open=portal_open)

    async def _admission(self) -> ingress.Admission:
        cache = ingress.networks(self.rt)
        fresh = cache.fresh()
        return fresh if fresh is not None else await anyio.to_thread.run_sync(cache.load)

    async def _audit(self, scope: Scope, address: str | None) -> None:
        verdict = ingress.consider_refusal(self.rt, address)
        if verdict.write:
            await anyio.to_thread.run_sync(
                lambda: ingress.record_refusal(
                    self.rt,
                    address=address,
                    method=str(scope.get("method", "WEBSOCKET"))[:10],
                    area=area_label(str(scope.get("path", ""))),
                    verdict=verdict,
                )
            )


def _refusal(scope: Scope, *, portal_open: bool) -> Response:
    request = Request(scope)
    if area_of(request) is not None:
        return render(
            request,
            "ui/unavailable.html",
            status=403,
            title=TITLE,
            remedy=REMEDY,
            portal_open=portal_open,
        )
    return problem(
        403, "network_not_allowed", TITLE + ".", instance=request.url.path, extra={"remedy": REMEDY}
    )


def _unavailable(scope: Scope, exc: Unavailable) -> Response:
    request = Request(scope)
    if area_of(request) is not None:
        return render(
            request, "ui/error.html", status=503, title=exc.message, message=exc.remedy or ""
        )
    return problem_of(exc, request.url.path)
