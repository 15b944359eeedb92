"""The organisation network allow-list (DESIGN §3.6)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Protocol

from cardvault.domain.networks import AllowList
from cardvault.services.networks.errors import NetworkNotAllowed


class Networks(Protocol):
    """What the check reads of an organisation: the row or the relay's plain one."""

    @property
    def allowed_networks(self) -> Sequence[str]:
        """Its allowed networks (CIDR)."""


def check_client(org: Networks, address: str | None) -> None:
    """Refuse a client outside the organisation's allowed networks (no list: nothing allowed).

    Before a passcode is tried, the sign-in answers such a caller as a wrong passcode
    (``signin_refusals``); this refusal is for the steps after it."""
    if address is not None and address in _allow_list(tuple(org.allowed_networks or ())):
        return
    # the caller is not told which organisation refused, nor what address it saw (DESIGN §3.6)
    raise NetworkNotAllowed(
        "This card cannot be used from your network.",
        remedy="Connect from your organisation's network (its Wi-Fi or VPN), or ask your RA.",
    )


@functools.lru_cache(maxsize=1024)
def _allow_list(networks: tuple[str, ...]) -> AllowList:
    """The parsed list, not parsed again on every in-session call. Safe to keep: it is
    keyed by the networks themselves, read fresh from the organisation's row each time, so
    a changed list is a new key and is never answered from an old one."""
    return AllowList.of(networks)
