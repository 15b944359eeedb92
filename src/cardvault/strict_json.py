"""JSON from outside the service, parsed with limits (DESIGN §3.5).

Python's ``json`` recurses once per nesting level, so ``[[[[…]]]]`` 10,000 deep raises
``RecursionError`` (not ``ValueError``) from inside the parser: it escaped every handler and
became a 500, or a dropped connection. Here the nesting depth is measured first, without
recursion, by a regular expression that skips over strings; only a document within the limits
reaches ``json.loads``. Numbers are bounded in length (Python's int parsing is quadratic in the
digits) and must be finite (``1e999`` parses as infinity, which no JSON encoder can write back).

The parse is strict as well: duplicate names, ``NaN`` and ``Infinity`` are refused, since two
parsers that disagree on them are a way to smuggle a value past a check.

A document over a limit raises a :class:`JsonLimitExceeded` (HTTP 400); one that is not strict
JSON raises :class:`JsonMalformed` (HTTP 422, like any other invalid input).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from typing import Any

from cardvault.errors import InvalidInput, error

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_DEPTH",
    "MAX_NUMBER_LENGTH",
    "JsonLimitExceeded",
    "JsonMalformed",
    "JsonNumberRefused",
    "JsonTooDeep",
    "JsonTooLarge",
    "loads",
]

#: nesting levels (objects and arrays); cardvault's own payloads use at most five
DEFAULT_MAX_DEPTH = 32
DEFAULT_MAX_BYTES = 65536
#: characters in one number literal: a 64-bit float needs 24, a timestamp in ms 13
MAX_NUMBER_LENGTH = 40

# A string (with its escapes) or one bracket. Strings are matched whole so that the brackets
# inside them are skipped; the unrolled loop keeps the match linear.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[{]|[\]}]', re.DOTALL)


@error
class JsonLimitExceeded(InvalidInput):
    """The document is well-formed enough to measure, and over a limit."""

    code = "json_limit"
    limit: int | None = None


class JsonTooDeep(JsonLimitExceeded):
    code = "json_too_deep"


class JsonTooLarge(JsonLimitExceeded):
    code = "json_too_large"


class JsonNumberRefused(JsonLimitExceeded):
    code = "json_number_refused"


class JsonMalformed(InvalidInput):
    code = "json_malformed"


def loads(
    data: bytes | bytearray | str,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_bytes: int = DEFAULT_MAX_BYTES,
    what: str = "The JSON document",
) -> Any:
    """Parse ``data`` (UTF-8) within the limits; ``what`` names it in error messages."""
    if len(data) > max_bytes:
        raise JsonTooLarge(f"{what} is larger than {max_bytes} bytes.", limit=max_bytes)
    try:
        text = data if isinstance(data, str) else bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        raise JsonMalformed(f"{what} is not UTF-8 text.") from None
    _check_depth(text, max_depth, what)
    try:
        return json.loads(
            text,
            object_pairs_hook=_unique_names,
            parse_constant=_no_constant,
            parse_int=_number(int, what),
            parse_float=_number(float, what),
        )
    except JsonLimitExceeded:
        raise
    except (ValueError, RecursionError) as err:  # RecursionError: belt and braces
        raise JsonMalformed(f"{what} is not valid JSON: {_reason(err)}.") from None


def _check_depth(text: str, max_depth: int, what: str) -> None:
    """The deepest nesting, as the parser would meet it: on any prefix that ``json`` accepts,
    the strings end where the pattern says, so the count agrees with its recursion."""
    if text.count("[") + text.count("{") <= max_depth:
        return  # cannot be deeper than it has openers (most documents stop here)
    depth = 0
    for match in _TOKEN.finditer(text):
        lexeme = match.group()
        if lexeme in "[{":
            depth += 1
            if depth > max_depth:
                raise JsonTooDeep(
                    f"{what} is nested more than {max_depth} levels deep.", limit=max_depth
                )
        elif lexeme in "]}":
            depth -= 1


def _unique_names(items: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(items)
    if len(out) != len(items):
        counts = Counter(name for name, _ in items)
        twice = next(name for name, n in counts.items() if n > 1)
        raise ValueError(f"the name {twice[:40]!r} appears more than once in one object")
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _number(kind: type[int] | type[float], what: str) -> Any:
    def parse(literal: str) -> int | float:
        if len(literal) > MAX_NUMBER_LENGTH:
            raise JsonNumberRefused(
                f"{what} has a number longer than {MAX_NUMBER_LENGTH} characters.",
                limit=MAX_NUMBER_LENGTH,
            )
        value = kind(literal)
        if isinstance(value, float) and not math.isfinite(value):
            raise JsonNumberRefused(f"{what} has a number too large to represent ({literal}).")
        return value

    return parse


def _reason(err: BaseException) -> str:
    if isinstance(err, json.JSONDecodeError):
        return f"{err.msg} at character {err.pos}"
    if isinstance(err, RecursionError):
        return "it is nested too deeply"
    return str(err)
