"""JSON as it travels: one recursive type for free-form JSON, so nothing needs ``Any`` for it.

Use a dataclass or a Pydantic model wherever the shape is known; these are for what is
genuinely free-form (a JWK, a WebAuthn extension map, a notification's template context).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeAlias

JsonScalar: TypeAlias = bool | int | float | str | None
JsonValue: TypeAlias = JsonScalar | list["JsonValue"] | dict[str, "JsonValue"]
JsonObject: TypeAlias = dict[str, JsonValue]
#: JSON handed in to be written: read-only containers, so a ``list[str]`` or a
#: ``dict[str, int]`` is accepted as it is (``list`` and ``dict`` are invariant)
JsonInput: TypeAlias = JsonScalar | Sequence["JsonInput"] | Mapping[str, "JsonInput"]


def text(data: JsonObject, key: str) -> str:
    """``data[key]`` where our own code wrote a string: anything else is a broken row, refused."""
    value = data[key]
    if not isinstance(value, str):
        raise TypeError(f"{key!r} holds {type(value).__name__}, not a string")
    return value


def text_or_none(data: JsonObject, key: str) -> str | None:
    """``data.get(key)`` where our own code wrote a string or nothing."""
    return None if data.get(key) is None else text(data, key)


def object_at(data: JsonObject, key: str) -> JsonObject:
    """``data[key]`` where our own code wrote a JSON object (a JWK, a nested state)."""
    value = data[key]
    if not isinstance(value, dict):
        raise TypeError(f"{key!r} holds {type(value).__name__}, not an object")
    return value


def as_json(value: JsonInput) -> JsonValue:
    """``value`` as JSON is read back (tuples become lists, mappings dicts), for a model
    field or a column that takes :data:`JsonValue`."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {key: as_json(item) for key, item in value.items()}
    return [as_json(item) for item in value]
