"""What networks raises."""

from __future__ import annotations

from cardvault.errors import (
    Conflict,
    PermissionDenied,
    Unavailable,
)


class NetworkNotAllowed(PermissionDenied):
    code = "network_not_allowed"


class NetworksChangedMeanwhile(Conflict):
    code = "networks_changed_meanwhile"


class IngressUnavailable(Unavailable):
    code = "ingress_unavailable"
