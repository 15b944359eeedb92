"""What piv raises."""

from __future__ import annotations

from cardvault.errors import (
    Conflict,
    NotFound,
)


class LinkClosed(NotFound):
    """The link is gone (its session ended, or the connector closed it)."""

    code = "piv_link_closed"


class NoPivApplet(Conflict):
    code = "piv_not_personalised"


class StaleRequest(Conflict):
    code = "piv_stale_request"
