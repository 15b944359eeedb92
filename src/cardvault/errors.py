"""The domain's exceptions: one root, small subclasses that carry data.

Every error has a stable ``code`` (used by the HTTP problem responses and the CLI's
``--json`` output) and a ``message`` that is safe to show to the person who caused it:
it never contains a secret. Each shell maps these in one place (``web/errors.py``,
``commandline.py``); services never raise HTTP exceptions.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, ClassVar, Final

#: What the exit code of a cardvault program means. Every error class's ``exit_code`` is one
#: of these (tests/unit/test_commandline.py walks them all); ``--help`` and the operator guide
#: print this table.
EXIT_CODES: Final = MappingProxyType(
    {
        0: "success",
        1: "any other error; the agent: the service refused for another reason",
        2: "invalid input or usage: malformed, contradictory, a weak passcode",
        3: "not found or outside your organisation; the agent: not signed in",
        4: "conflict with the current state: duplicate, card locked, wrong status",
        5: "permission denied, or authentication failed",
        6: "integrity: sealed data, a signature or the audit chain did not verify",
        7: "the service is sealed: cardvault unseal",
        8: "unavailable or busy (database, audit log, mail, reader): try again",
        9: "not set up: data directory, schema, CA, audit key or key provider",
        130: "interrupted (Ctrl-C)",
    }
)


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
    """The caller is known but may not do this (role, organisation, policy, network)."""

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
    """The master key is not available: the custodians have not unsealed the service."""

    code = "sealed"
    http_status = 503
    exit_code = 7


class Unavailable(CardvaultError):
    """A dependency (database, audit log, mail) could not do its part; nothing was changed."""

    code = "unavailable"
    http_status = 503
    exit_code = 8
