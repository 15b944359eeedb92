"""The domain's exceptions: one root, small subclasses that carry data.

Every error has a stable ``code`` (used by the HTTP problem responses and the CLI's
``--json`` output) and a ``message`` that is safe to show to the person who caused it:
it never contains a secret. What an error carries besides is declared on its class as typed
attributes (``WrongPasscode.attempts_left: int``): the classes are keyword-only dataclasses,
so a raise site that forgets or misspells one fails the type check.

An error knows nothing of HTTP or exit codes. Each shell maps the classes in one place:
``web/errors.py`` to a status and an RFC 9457 problem, ``commandline.py`` to the documented
exit codes. The classes here are the categories both tables are keyed by; a feature's own
errors subclass them (``services/<feature>/errors.py``). Services never raise HTTP exceptions.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import KW_ONLY, dataclass
from typing import ClassVar, TypeVar, dataclass_transform

from cardvault.json_types import JsonObject, JsonValue

__all__ = [
    "AuthenticationFailed",
    "CardvaultError",
    "Conflict",
    "IntegrityError",
    "InvalidInput",
    "NotFound",
    "NotSetUp",
    "PermissionDenied",
    "ServiceSealed",
    "Unavailable",
    "error",
]

E = TypeVar("E", bound=type)


@dataclass_transform(kw_only_default=True, eq_default=False, field_specifiers=(dataclasses.field,))
def error(cls: E) -> E:
    """Make an error class that declares attributes a keyword-only dataclass, keeping the
    exception's identity (``eq=False``) and its usual ``repr``: one ``__init__`` for all."""
    return dataclass(eq=False, repr=False, kw_only=True)(cls)  # type: ignore[return-value]


@dataclass(eq=False, repr=False)
class CardvaultError(Exception):
    """Root of every error cardvault raises on purpose.

    ``message`` is for the person (never a secret), ``remedy`` what they can do about it.
    Subclasses declare their data as attributes under ``@error``; :meth:`extensions` gives
    those that are JSON to the shells.
    """

    code: ClassVar[str] = "internal"

    message: str
    _: KW_ONLY
    remedy: str | None = None

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __reduce__(self) -> tuple[object, tuple[type[CardvaultError], dict[str, object]]]:
        """Pickle by attributes: an error's ``__init__`` takes keywords, not ``args``."""
        return _restore, (type(self), dict(self.__dict__))

    def diagnostics(self) -> str:
        """A message plus what to do about it, for people rather than programs."""
        return self.message if not self.remedy else f"{self.message}\n{self.remedy}"

    def extensions(self) -> JsonObject:
        """The declared attributes as JSON members (RFC 9457 extension members, ``--json``).

        An optional attribute left at ``None`` is left out, so a refusal says only what is
        known; one that is not JSON (a bucket, a row id object) stays in the process.
        Subclasses whose wire names differ from their attributes override this.
        """
        out: JsonObject = {}
        for spec in dataclasses.fields(self):
            if spec.name in _OWN:
                continue
            value = getattr(self, spec.name)
            if value is None and spec.default is None:
                continue
            if _is_json(value):
                out[spec.name] = _json(value)
        return out

    def as_dict(self) -> JsonObject:
        """The error for programs: ``code``, ``message``, ``remedy`` and the extensions."""
        out: JsonObject = {"code": self.code, "message": self.message}
        if self.remedy:
            out["remedy"] = self.remedy
        out.update(self.extensions())
        return out


_OWN = frozenset({"message", "remedy"})


def _restore(cls: type[CardvaultError], state: dict[str, object]) -> CardvaultError:
    error = cls.__new__(cls)
    error.__dict__.update(state)
    Exception.__init__(error, error.message)
    return error


def _is_json(value: object) -> bool:
    if isinstance(value, enum.Enum):
        return isinstance(value.value, str | int)
    if isinstance(value, list | tuple):
        return all(_is_json(v) for v in value)
    return isinstance(value, str | int | float | bool | type(None))


def _json(value: object) -> JsonValue:
    if isinstance(value, enum.Enum):
        return _json(value.value)
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    assert isinstance(value, str | int | float | bool | type(None))
    return value


@error
class InvalidInput(CardvaultError):
    """The request is malformed, oversized or contradictory; ``field`` names the part."""

    code = "invalid_input"
    field: str | None = None


class NotFound(CardvaultError):
    """The object does not exist, or is outside the caller's scope (we do not say which)."""

    code = "not_found"


@error
class Conflict(CardvaultError):
    """The request collides with existing state (duplicate id, wrong status)."""

    code = "conflict"
    field: str | None = None


class PermissionDenied(CardvaultError):
    """The caller is known but may not do this (role, organisation, policy, network)."""

    code = "permission_denied"


class AuthenticationFailed(CardvaultError):
    """Credentials did not check out. The message never says which part was wrong."""

    code = "authentication_failed"


class IntegrityError(CardvaultError):
    """Sealed data failed authentication: it was changed, moved, or the key is wrong."""

    code = "integrity"


class ServiceSealed(CardvaultError):
    """The master key is not available: the custodians have not unsealed the service."""

    code = "sealed"


class Unavailable(CardvaultError):
    """A dependency (database, audit log, mail) could not do its part; nothing was changed."""

    code = "unavailable"


class NotSetUp(CardvaultError):
    """Something the installation needs is missing or from elsewhere: the data directory,
    the database schema, the CA, the audit key or the key provider. An operator's task."""

    code = "not_set_up"
