"""The service's JSON answers, read with the type each field must have.

A client reads what a server sent: a missing or mistyped field is the service's fault (or a
man in the middle's), and is reported as :class:`~cardvault.clients.common.api.ServiceError`
naming the field, not as a ``KeyError`` deep in a command.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TypeAlias

from cardvault.errors import CardvaultError

__all__ = ["JsonObject", "JsonValue", "Reply", "UnexpectedReply"]

JsonScalar: TypeAlias = bool | int | float | str | None
JsonValue: TypeAlias = JsonScalar | list["JsonValue"] | dict[str, "JsonValue"]
JsonObject: TypeAlias = dict[str, JsonValue]


class UnexpectedReply(CardvaultError):
    """The service answered, but not with what this client expects."""

    code = "unexpected_reply"


class Reply(Mapping[str, JsonValue]):
    """One JSON object of an answer (read-only); the accessors check the type they promise."""

    __slots__ = ("data",)

    def __init__(self, data: JsonObject) -> None:
        self.data = data

    def __getitem__(self, name: str) -> JsonValue:
        return self.data[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return f"Reply({sorted(self.data)})"  # names only: answers carry tokens and keys

    def has(self, name: str) -> bool:
        """The field is there and not null."""
        return self.data.get(name) is not None

    def text(self, name: str) -> str:
        value = self.data.get(name)
        if not isinstance(value, str):
            raise self._unexpected(name, "text")
        return value

    def optional_text(self, name: str) -> str | None:
        value = self.data.get(name)
        if value is not None and not isinstance(value, str):
            raise self._unexpected(name, "text")
        return value

    def number(self, name: str) -> int:
        value = self.data.get(name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._unexpected(name, "a whole number")
        return value

    def flag(self, name: str) -> bool:
        """Whether the field is set: true, a count above zero, non-empty (absent: false)."""
        return bool(self.data.get(name))

    def obj(self, name: str) -> Reply:
        value = self.data.get(name)
        if not isinstance(value, dict):
            raise self._unexpected(name, "an object")
        return Reply(value)

    def optional_obj(self, name: str) -> Reply | None:
        return self.obj(name) if self.has(name) else None

    def objects(self, name: str) -> list[Reply]:
        """A list of objects; an absent list is empty."""
        value = self.data.get(name)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self._unexpected(name, "a list of objects")
        return [Reply(v) for v in value if isinstance(v, dict)]

    def texts(self, name: str) -> list[str]:
        """A list of text; an absent list is empty."""
        value = self.data.get(name)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._unexpected(name, "a list of text")
        return [v for v in value if isinstance(v, str)]

    def hex_map(self, name: str) -> dict[str, str | None]:
        """An object of text (or null) values, such as the connector's hex-encoded objects."""
        value = self.obj(name).data
        if not all(v is None or isinstance(v, str) for v in value.values()):
            raise self._unexpected(name, "an object of text")
        return {k: v if isinstance(v, str) else None for k, v in value.items()}

    @staticmethod
    def _unexpected(name: str, kind: str) -> UnexpectedReply:
        return UnexpectedReply(
            f"The service's answer has no {kind} {name!r}.",
            remedy="Check that --server is the cardvault service, at a version this client knows.",
        )
