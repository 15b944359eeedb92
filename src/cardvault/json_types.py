"""JSON as it travels: one recursive type for free-form JSON, so nothing needs ``Any`` for it.

Use a dataclass or a Pydantic model wherever the shape is known; these are for what is
genuinely free-form (a JWK, a WebAuthn extension map, a notification's template context).
"""

from __future__ import annotations

from typing import TypeAlias

JsonScalar: TypeAlias = bool | int | float | str | None
JsonValue: TypeAlias = JsonScalar | list["JsonValue"] | dict[str, "JsonValue"]
JsonObject: TypeAlias = dict[str, JsonValue]
