"""The connector's relay keeps the service's standing answers only until its next request."""

from __future__ import annotations

import base64
from typing import Any, cast

import pytest

from cardvault.clients.common.api import CardvaultApi, ServiceError
from cardvault.clients.common.replies import Reply
from cardvault.clients.connector.cache import LocalAnswers
from cardvault.clients.connector.relay import LinkCredentials, RelayFailed, ServiceRelay
from cardvault.clients.connector.vpcd import Control

STATUS = bytes.fromhex("00200080")
VERIFY = bytes.fromhex("002000800831323334353637ff")
CREDENTIALS = LinkCredentials(
    path="/api/v1/piv/apdu", token="t" * 20, key_field="session_key", key="k", link_id="l"
)


class FakeService:
    """Answers each request with the next scripted answer; an exception is raised instead."""

    def __init__(self, *answers: dict[str, Any] | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[dict[str, Any]] = []

    def sealed_call(self, path: str, claims: dict[str, Any]) -> Reply:
        self.requests.append(claims)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return Reply(answer)


def _answer(response: str, standing: dict[str, str] | None = None) -> dict[str, Any]:
    sw = base64.b64encode(bytes.fromhex(response)).decode()
    return {"response": sw, "standing": standing or {}}


def _relay(service: FakeService) -> ServiceRelay:
    api = cast(CardvaultApi, service)
    return ServiceRelay(api, CREDENTIALS, local=LocalAnswers(), retry_for=0, sleep=lambda _: None)


def test_a_standing_answer_is_given_locally_until_the_next_request() -> None:
    service = FakeService(
        _answer("9000", {"00200080": "9000"}),
        _answer("63c2"),
        _answer("63c2"),
    )
    relay = _relay(service)
    assert relay.relay(VERIFY) == b"\x90\x00"
    assert relay.relay(STATUS) == b"\x90\x00"
    assert len(service.requests) == 1
    assert relay.relay(VERIFY) == b"\x63\xc2"  # the next request replaces what stood
    assert relay.relay(STATUS) == b"\x63\xc2"
    assert len(service.requests) == 3


def test_power_up_drops_standing_answers() -> None:
    service = FakeService(_answer("9000", {"00200080": "9000"}), _answer("63c3"))
    relay = _relay(service)
    relay.relay(VERIFY)
    relay.power(Control.RESET)
    assert relay.relay(STATUS) == b"\x63\xc3"
    assert service.requests[-1]["power_up"] is True


def test_a_failed_request_leaves_nothing_standing() -> None:
    refused = ServiceError("refused", status=400)
    service = FakeService(_answer("9000", {"00200080": "9000"}), refused, _answer("63c3"))
    relay = _relay(service)
    relay.relay(VERIFY)
    with pytest.raises(RelayFailed):
        relay.relay(VERIFY)
    assert relay.relay(STATUS) == b"\x63\xc3"
