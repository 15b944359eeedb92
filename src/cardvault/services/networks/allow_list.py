"""The organisation network allow-list (DESIGN §3.6)."""

from __future__ import annotations

import ipaddress

from cardvault.services.networks.errors import NetworkNotAllowed
from cardvault.store.models import Organisation


def check_client(org: Organisation, address: str | None) -> None:
    """Refuse a client outside the organisation's allowed networks (no list: nothing allowed).

    Before a passcode is tried, the sign-in answers such a caller as a wrong passcode
    (``signin_refusals``); this refusal is for the steps after it."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        ip = None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip is not None and any(ip in ipaddress.ip_network(n) for n in org.allowed_networks or []):
        return
    # the caller is not told which organisation refused, nor what address it saw (DESIGN §3.6)
    raise NetworkNotAllowed(
        "This card cannot be used from your network.",
        remedy="Connect from your organisation's network (its Wi-Fi or VPN), or ask your RA.",
    )
