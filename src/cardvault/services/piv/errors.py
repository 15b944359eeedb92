"""What the PC/SC channel raises: reader links and the APDU relay."""

from __future__ import annotations

from cardvault.errors import (
    Conflict,
    NotFound,
)


class LinkClosed(NotFound):
    """The link is gone (its session ended, or the connector closed it)."""

    code = "piv_link_closed"


class NoPivApplet(Conflict):
    """The card has no PIV application yet (it was not personalised for PC/SC)."""

    code = "piv_not_personalised"


class StaleRequest(Conflict):
    """An APDU older than one the card already answered on this link."""

    code = "piv_stale_request"
