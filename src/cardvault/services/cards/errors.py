"""What cards raises."""

from __future__ import annotations

from cardvault.errors import (
    Conflict,
    InvalidInput,
    PermissionDenied,
)


class WrongCode(InvalidInput):
    code = "wrong_enrolment_code"


class CardExists(Conflict):
    code = "card_exists"


class NotAMember(PermissionDenied):
    code = "not_a_member"


class AlreadyAssociated(Conflict):
    code = "already_associated"


class CardRevoked(Conflict):
    code = "card_revoked"
