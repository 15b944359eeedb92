"""Who is calling: the socket peer, or — only when the peer is a configured trusted proxy —
the rightmost address in X-Forwarded-For that is not one of our proxies (DESIGN §3.6).

X-Forwarded-For is written by whoever sent the request, so only the hops our own proxies
appended can be believed: walking from the right, each trusted proxy vouches for the hop
before it, and the first hop that is not a trusted proxy is the client. Anything to its
left was written by the client itself. An unreadable hop where the client should be leaves
the address unknown (``None``), which every allow-list refuses.
"""

from __future__ import annotations

import functools

from fastapi import Request
from starlette.types import Scope

from cardvault.domain.networks import AllowList, IPAddress, client_ip
from cardvault.services.system.runtime import Actor, Runtime

FORWARDED_FOR = b"x-forwarded-for"
#: where scope_client_ip keeps its answer in the request's scope
_KNOWN = "cardvault.client_ip"


@functools.lru_cache(maxsize=8)
def _proxies(trusted_proxies: tuple[str, ...]) -> AllowList:
    return AllowList.of(trusted_proxies)


def forwarded_client(
    peer: str | None, forwarded_for: list[str], trusted: AllowList
) -> IPAddress | None:
    """The client address from the peer and the X-Forwarded-For values (in header order)."""
    peer_ip = client_ip(peer)
    if peer_ip is None or peer_ip not in trusted:
        return peer_ip
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        ip = client_ip(hop)
        if ip is None:
            return None
        if ip not in trusted:
            return ip
    # no header (the proxy's own health check), or every hop is one of our networks
    return client_ip(hops[0]) if hops else peer_ip


def scope_client_ip(scope: Scope, trusted_proxies: list[str]) -> IPAddress | None:
    """The client address of an ASGI request (for middleware, before any route runs).
    Worked out once per request: the gate, the rate limits, the audit actor and the log
    event all ask (kept in the scope, which lives as long as the request)."""
    known = scope.get(_KNOWN)
    if known is not None and known[0] is trusted_proxies:
        return known[1]  # type: ignore[no-any-return]
    ip = _scope_client_ip(scope, trusted_proxies)
    scope[_KNOWN] = (trusted_proxies, ip)
    return ip


def _scope_client_ip(scope: Scope, trusted_proxies: list[str]) -> IPAddress | None:
    client = scope.get("client")
    peer = client[0] if client else None
    if not trusted_proxies:
        return client_ip(peer)
    values = [
        value.decode("latin-1")
        for name, value in scope.get("headers") or []
        if name == FORWARDED_FOR
    ]
    return forwarded_client(peer, values, _proxies(tuple(trusted_proxies)))


def scope_client_address(scope: Scope, trusted_proxies: list[str]) -> str | None:
    ip = scope_client_ip(scope, trusted_proxies)
    return None if ip is None else str(ip)


def client_address(request: Request, trusted_proxies: list[str]) -> str | None:
    return scope_client_address(request.scope, trusted_proxies)


def actor_for(
    request: Request, rt: Runtime, *, ref: str = "anonymous", display: str = "anonymous"
) -> Actor:
    # the request's id as web/request_log.py settled it: logs and audit events share it
    known = getattr(request.state, "request_id", None)
    kwargs = {"request_id": known} if isinstance(known, str) else {}
    return Actor(
        ref=ref,
        display=display,
        client_address=client_address(request, rt.settings.trusted_proxies),
        **kwargs,
    )
