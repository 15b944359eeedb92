"""What security keys raise: the policy, and sign-in starting from a key."""

from __future__ import annotations

from cardvault.errors import (
    InvalidInput,
    PermissionDenied,
)


class SecurityKeysNotAllowed(PermissionDenied):
    """The organisation's policy does not allow security keys."""

    code = "fido2_not_allowed_here"


class ChooseOrganisation(InvalidInput):
    """The security key is registered in several organisations: the sign-in must name one."""

    code = "fido2_choose_organisation"
