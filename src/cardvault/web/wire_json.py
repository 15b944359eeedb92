"""Free-form JSON in an answer or a request body, typed for FastAPI.

``cardvault.json_types`` names JSON for the whole project, but its recursive aliases are
not something Pydantic can build a schema from; at the HTTP edge the same shape is spelled
with Pydantic's own ``JsonValue``. Use a model wherever the shape is known; these are for
what is genuinely free-form (a JWK, WebAuthn options, a service's JSON view).
"""

from __future__ import annotations

from typing import TypeAlias

from pydantic import JsonValue

#: a JSON object as FastAPI validates and documents it
WireObject: TypeAlias = dict[str, JsonValue]
