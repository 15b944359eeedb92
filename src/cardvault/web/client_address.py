"""Who is calling: the peer address, or X-Forwarded-For when the peer is a trusted proxy."""

from __future__ import annotations

import ipaddress

from fastapi import Request

from cardvault.services.runtime import Actor, Runtime


def client_address(request: Request, trusted_proxies: list[str]) -> str | None:
    peer = request.client.host if request.client else None
    if not peer or not trusted_proxies or not _in(peer, trusted_proxies):
        return peer
    forwarded = request.headers.get("x-forwarded-for", "")
    hops = [h.strip() for h in forwarded.split(",") if h.strip()]
    # walk from the nearest hop outwards, skipping our own proxies
    for hop in reversed(hops):
        if not _in(hop, trusted_proxies):
            return hop
    return peer


def _in(address: str, networks: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(n, strict=False) for n in networks)


def actor_for(
    request: Request, rt: Runtime, *, ref: str = "anonymous", display: str = "anonymous"
) -> Actor:
    request_id = request.headers.get("x-request-id", "")[:64] or None
    kwargs = {"request_id": request_id} if request_id else {}
    return Actor(
        ref=ref,
        display=display,
        client_address=client_address(request, rt.settings.trusted_proxies),
        **kwargs,
    )
