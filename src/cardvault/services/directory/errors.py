"""What directory raises."""

from __future__ import annotations

from cardvault.errors import (
    Conflict,
    NotFound,
)


class UnknownOrganisation(NotFound):
    code = "unknown_organisation"


class UnknownPerson(NotFound):
    code = "unknown_person"


class DuplicateUserId(Conflict):
    code = "duplicate_user_id"
