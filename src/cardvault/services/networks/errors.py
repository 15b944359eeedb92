"""What the network checks raise: the organisation's allow-list and the ingress gate."""

from __future__ import annotations

from cardvault.errors import (
    Conflict,
    PermissionDenied,
    Unavailable,
)


class NetworkNotAllowed(PermissionDenied):
    """The client's address is outside the organisation's networks."""

    code = "network_not_allowed"


class NetworksChangedMeanwhile(Conflict):
    """The list was changed by someone else since it was shown: look again."""

    code = "networks_changed_meanwhile"


class IngressUnavailable(Unavailable):
    """The networks cannot be read, so no request can be admitted (fail closed)."""

    code = "ingress_unavailable"
