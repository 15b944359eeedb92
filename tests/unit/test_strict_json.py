"""JSON from outside: within the limits it parses as ``json`` would; over them it is a 400
that says which limit, never a RecursionError; ambiguous JSON is refused."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardvault import strict_json
from cardvault.strict_json import (
    JsonMalformed,
    JsonNumberRefused,
    JsonTooDeep,
    JsonTooLarge,
    loads,
)
from cardvault.web.errors import status_of

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(), kids, max_size=4),
    max_leaves=30,
)


def depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    return 0


@given(values)
def test_within_the_limits_it_parses_exactly_as_json_does(value: Any) -> None:
    text = json.dumps(value, ensure_ascii=False)
    assert loads(text.encode(), max_depth=max(depth(value), 1)) == json.loads(text)


@given(values)
def test_one_level_over_the_depth_limit_is_refused_with_the_limit(value: Any) -> None:
    wrapped = [value]
    limit = depth(wrapped) - 1
    if limit < 1:
        return
    with pytest.raises(JsonTooDeep) as info:
        loads(json.dumps(wrapped), max_depth=limit)
    assert status_of(info.value) == 400
    assert info.value.limit == limit


@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_ten_thousand_levels_are_a_400_not_a_recursion_error(opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    text = opener * 10_000 + "0" + closer * 10_000
    with pytest.raises(JsonTooDeep, match="nested more than 32 levels deep") as info:
        loads(text)
    assert info.value.code == "json_too_deep"


def test_brackets_inside_strings_do_not_count() -> None:
    text = json.dumps({"a": "[[[[[[" * 100, "b": ['\\"[[[', "{{{{"]})
    assert loads(text, max_depth=2)["b"][1] == "{{{{"


def test_stray_closers_hide_no_openers_from_the_parser() -> None:
    # the count goes negative, but json stops at the first stray closer, before recursing
    with pytest.raises(JsonMalformed, match="at character 0"):
        loads("]" * 100 + "[" * 60, max_depth=32)
    # closers inside a string are skipped, so they cannot offset real openers
    with pytest.raises(JsonTooDeep):
        loads('["' + "]" * 100 + '", ' + "[" * 40 + "]" * 40 + "]", max_depth=32)


@pytest.mark.parametrize("literal", ["1" * 41, "-" + "9" * 40, "1." + "0" * 39, "1e999", "-1e999"])
def test_huge_numbers_are_refused_with_a_400(literal: str) -> None:
    with pytest.raises(JsonNumberRefused) as info:
        loads(f"[{literal}]")
    assert status_of(info.value) == 400


def test_numbers_up_to_the_length_limit_parse() -> None:
    assert loads("[" + "9" * strict_json.MAX_NUMBER_LENGTH + "]") == [int("9" * 40)]
    assert loads("[1e308, 5e-324]") == [1e308, 5e-324]


def test_a_document_over_the_size_limit_is_refused_before_parsing() -> None:
    with pytest.raises(JsonTooLarge, match="larger than 10 bytes"):
        loads(b'"' + b"x" * 10 + b'"', max_bytes=10)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"a": 1, "a": 2}', "'a' appears more than once"),
        ("[NaN]", "NaN is not a JSON number"),
        ("[Infinity]", "Infinity is not a JSON number"),
        ("{", "at character 1"),
        ("", "at character 0"),
    ],
)
def test_ambiguous_or_broken_json_is_malformed_and_says_why(text: str, reason: str) -> None:
    with pytest.raises(JsonMalformed, match=reason) as info:
        loads(text)
    assert status_of(info.value) == 422


def test_bytes_that_are_not_utf8_are_malformed() -> None:
    with pytest.raises(JsonMalformed, match="not UTF-8"):
        loads(b'"\xff"')


def test_the_message_names_the_document() -> None:
    with pytest.raises(JsonTooDeep, match=r"^The request body is nested"):
        loads("[[[]]]", max_depth=2, what="The request body")
