"""What the RA façade raises itself (it passes on the feature packages' errors)."""

from __future__ import annotations

from cardvault.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    error,
)


class WouldLockOut(InvalidInput):
    """The change would put the RA's own address outside the organisation's networks."""

    code = "would_lock_out"


@error
class NotApproved(PermissionDenied):
    """The organisation asks a sponsor to approve a card first, and none has yet; ``field``
    names the form field the refusal is shown next to."""

    code = "card_not_approved"
    field: str | None = None


@error
class NoSuchPerson(NotFound):
    """No person has that user id with that email address; ``field`` names the form field."""

    field: str | None = None


class ImportHasProblems(InvalidInput):
    """The file has bad rows and the RA did not choose to import the good ones only."""

    code = "import_has_problems"


class ElsewhereAlready(Conflict):
    """The user id is a person of another organisation: add them, do not create them."""

    code = "person_in_another_organisation"


class OwnRequest(PermissionDenied):
    """The RA asked for this role change themselves: another RA manager decides it."""

    code = "own_role_request"
