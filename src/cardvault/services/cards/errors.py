"""What a card's life raises: issuance, enrolment, invitations, methods and sealing."""

from __future__ import annotations

from cardvault.errors import (
    Conflict,
    InvalidInput,
    PermissionDenied,
)


class WrongCode(InvalidInput):
    """The enrolment code the holder typed is not the one sent to them."""

    code = "wrong_enrolment_code"


class CardExists(Conflict):
    """The person already has a card that is not revoked."""

    code = "card_exists"


class NotAMember(PermissionDenied):
    """The person is not a member of the organisation the card would be issued in."""

    code = "not_a_member"


class AlreadyAssociated(Conflict):
    """The method (an AD account, a key, an HR card) is bound to a card already; ``field``
    names it."""

    code = "already_associated"


class CardRevoked(Conflict):
    """The card is revoked: its keys are gone, nothing can be done with it."""

    code = "card_revoked"
