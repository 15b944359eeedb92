"""What the PC/SC channel raises: reader links, the APDU relay, the applet image, the card PIN."""

from __future__ import annotations

from cardvault.errors import (
    AuthenticationFailed,
    Conflict,
    NotFound,
    PermissionDenied,
    error,
)


class LinkClosed(NotFound):
    """The link is gone (its session ended, or the connector closed it)."""

    code = "piv_link_closed"


class NoPivApplet(Conflict):
    """The card has no applet yet: its holder has not set a card PIN (card_pin.py)."""

    code = "piv_pin_not_set"


class StaleRequest(Conflict):
    """An APDU older than one the card already answered on this link."""

    code = "piv_stale_request"


class NotReadyForReaders(Conflict):
    """The card lacks a valid certificate its applet image needs (9A or 9C)."""

    code = "piv_not_ready"


@error
class WrongCardPin(AuthenticationFailed):
    """The current card PIN given to change it is wrong; ``attempts_left`` before it blocks."""

    code = "card_pin_wrong"
    attempts_left: int


class CardPinBlocked(PermissionDenied):
    """The card PIN is blocked; only a card session opened after the block may set a new one."""

    code = "card_pin_blocked"


class CardPinRaced(Conflict):
    """The card PIN or the applet changed elsewhere at the same moment; nothing was changed."""

    code = "card_pin_raced"
