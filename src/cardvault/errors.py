"""The domain's exceptions: one root, small subclasses that carry data.

Every error has a stable ``code`` (used by the HTTP problem responses and the CLI's
``--json`` output) and a ``message`` that is safe to show to the person who caused it:
it never contains a secret. Each shell maps these in one place (``web/errors.py``,
``cli/errors.py``); services never raise HTTP exceptions.
"""

from __future__ import annotations

from typing import Any, ClassVar


class CardvaultError(Exception):
    """Root of every error cardvault raises on purpose."""

    code: ClassVar[str] = "internal"
    #: the HTTP status the web shell answers with; kept here so the mapping is one table
    http_status: ClassVar[int] = 500
    #: the CLI exit code
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, *, remedy: str | None = None, **data: Any) -> None:
        super().__init__(message)
        self.message = message
        self.remedy = remedy
        self.data = data

    def diagnostics(self) -> str:
        """A message plus what to do about it, for people rather than programs."""
        return self.message if not self.remedy else f"{self.message}\n{self.remedy}"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.remedy:
            out["remedy"] = self.remedy
        out.update({k: v for k, v in self.data.items() if _jsonable(v)})
        return out


def _jsonable(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | type(None) | list | dict)


class InvalidInput(CardvaultError):
    """The request is malformed, oversized or contradictory."""

    code = "invalid_input"
    http_status = 422
    exit_code = 2


class NotFound(CardvaultError):
    """The object does not exist, or is outside the caller's scope (we do not say which)."""

    code = "not_found"
    http_status = 404
    exit_code = 3


class Conflict(CardvaultError):
    """The request collides with existing state (duplicate id, wrong status)."""

    code = "conflict"
    http_status = 409
    exit_code = 4


class PermissionDenied(CardvaultError):
    code = "permission_denied"
    http_status = 403
    exit_code = 5


class AuthenticationFailed(CardvaultError):
    """Credentials did not check out. The message never says which part was wrong."""

    code = "authentication_failed"
    http_status = 401
    exit_code = 5


class IntegrityError(CardvaultError):
    """Sealed data failed authentication: it was changed, moved, or the key is wrong."""

    code = "integrity"
    http_status = 500
    exit_code = 6


class ServiceSealed(CardvaultError):
    code = "sealed"
    http_status = 503
    exit_code = 7


class Unavailable(CardvaultError):
    """A dependency (database, audit log, mail) could not do its part; nothing was changed."""

    code = "unavailable"
    http_status = 503
    exit_code = 8
