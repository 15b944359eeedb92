"""What security_keys raises."""

from __future__ import annotations

from cardvault.errors import (
    InvalidInput,
    PermissionDenied,
)


class SecurityKeysNotAllowed(PermissionDenied):
    code = "fido2_not_allowed_here"


class ChooseOrganisation(InvalidInput):
    code = "fido2_choose_organisation"
