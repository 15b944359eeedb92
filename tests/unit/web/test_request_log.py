"""The request log's pure parts: which request ids are passed on, the metrics' areas, the
JSON line."""

from __future__ import annotations

import json
import logging

from cardvault.web.request_log import REQUEST_ID, JsonFormatter, _area, given_id


def _scope(value: bytes) -> dict[str, object]:
    return {"headers": [(b"x-request-id", value)]}


def test_a_plain_request_id_is_passed_on_anything_else_is_not() -> None:
    assert given_id(_scope(b"lb-0123456789abcdef")) == "lb-0123456789abcdef"
    assert given_id(_scope(b"short")) is None
    assert given_id(_scope(b'x" {"level":"critical"}')) is None
    assert given_id(_scope(b"a" * 129)) is None
    assert given_id({"headers": []}) is None


def test_areas_are_few_and_carry_no_path_parameters() -> None:
    assert _area("/api/v1/auth/login") == "api/v1/auth"
    assert _area("/portal/reset/{token}") == "portal"
    assert _area("/") == "home"
    assert _area("unmatched") == "unmatched"


def test_a_log_line_is_one_json_object_with_the_request_id() -> None:
    record = logging.LogRecord("cardvault.x", logging.WARNING, __file__, 1, "a %s", ("b",), None)
    record.event = {"event": "http.request", "status": 200}
    token = REQUEST_ID.set("req-0123456789")
    try:
        line = JsonFormatter().format(record)
    finally:
        REQUEST_ID.reset(token)
    parsed = json.loads(line)
    assert "\n" not in line
    assert parsed["message"] == "a b"
    assert (parsed["level"], parsed["logger"]) == ("warning", "cardvault.x")
    assert (parsed["request_id"], parsed["event"], parsed["status"]) == (
        "req-0123456789",
        "http.request",
        200,
    )
