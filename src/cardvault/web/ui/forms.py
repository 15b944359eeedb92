"""What a form needs between a POST and its re-display: typed values and precise errors.

Secrets (passcodes, answers, codes) are never put back into ``values``: a re-displayed
form shows them empty. Errors are kept in the order of the fields so the error summary
at the top reads like the form.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from cardvault import strict_json
from cardvault.errors import CardvaultError, InvalidInput
from cardvault.json_types import JsonObject

MAX_FIELD = 2000
MAX_FIELDS = 60


@dataclass
class Form:
    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    secret_fields: frozenset[str] = frozenset()

    def get(self, name: str, default: str = "") -> str:
        return self.values.get(name, default)

    def error(self, name: str) -> str | None:
        return self.errors.get(name)

    def add_error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)

    @property
    def ok(self) -> bool:
        return not self.errors

    def shown(self) -> Form:
        """The form as it may be shown again: secrets removed."""
        kept = {k: v for k, v in self.values.items() if k not in self.secret_fields}
        return Form(values=kept, errors=dict(self.errors), secret_fields=self.secret_fields)

    def add_exception(
        self, exc: CardvaultError, *, fields: Mapping[str, str] | None = None, default: str = ""
    ) -> None:
        """Place a service error next to its field (``fields`` maps service → form names)."""
        named = getattr(exc, "field", None)  # InvalidInput, Conflict and a few others name one
        name = named if isinstance(named, str) else ""
        name = (fields or {}).get(name, name) or default
        self.add_error(name or "form", exc.message)


async def read_form(request: Request, secret_fields: Iterable[str] = ()) -> Form:
    """The submitted fields as plain strings (first value of each), bounded in size."""
    data = await request.form()
    values: dict[str, str] = {}
    for key, value in data.multi_items():
        if len(values) >= MAX_FIELDS:
            raise InvalidInput("The form has too many fields.")
        if isinstance(value, str) and key not in values:
            values[key[:100]] = value[:MAX_FIELD]
    return Form(values=values, secret_fields=frozenset(secret_fields))


async def read_json(request: Request) -> Any:
    """A JSON body a page script posts, whatever its content type says, within the
    service's depth and size limits (``None`` when it is not JSON)."""
    settings = request.app.state.runtime.settings
    try:
        return strict_json.loads(
            await request.body(),
            max_depth=settings.json_max_depth,
            max_bytes=settings.max_body_bytes,
            what="The request body",
        )
    except strict_json.JsonMalformed:
        return None


async def read_credential(request: Request) -> JsonObject:
    """The security key's answer a page script posts, ``{"credential": <toJSON()>}``."""
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("credential"), dict):
        raise InvalidInput("Send the key's answer as {credential}.")
    credential: JsonObject = body["credential"]
    return credential


@dataclass(frozen=True, kw_only=True)
class NewKey:
    """A security key's registration a page script posts: ``{credential, nickname}``."""

    credential: JsonObject
    nickname: str


async def read_new_key(request: Request) -> NewKey:
    """The new key's answer (``create()``'s ``toJSON()``) and the name the person gave it."""
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("credential"), dict):
        raise InvalidInput("Send the key's answer as {credential, nickname}.")
    return NewKey(credential=body["credential"], nickname=str(body.get("nickname") or ""))
