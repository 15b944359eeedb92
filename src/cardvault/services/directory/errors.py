"""What the directory raises: organisations and persons."""

from __future__ import annotations

from cardvault.errors import (
    Conflict,
    NotFound,
)


class UnknownOrganisation(NotFound):
    """No organisation has this code."""

    code = "unknown_organisation"


class UnknownPerson(NotFound):
    """No person has this user id."""

    code = "unknown_person"


class DuplicateUserId(Conflict):
    """A person with this user id exists already."""

    code = "duplicate_user_id"
