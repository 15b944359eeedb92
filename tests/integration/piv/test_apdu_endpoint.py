"""The APDU routes' own endpoint (web/api/piv.py ``ApduEndpoint``), which the edge calls
instead of FastAPI: over real HTTP, an APDU is answered without FastAPI's routing, and its
answers and refusals carry what every route's do -- the request id, the security headers,
problem+json with the codes a route FastAPI serves gives, the body limit, one log event
naming the route."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator

import httpx
import pytest
from tests.support import auth as a
from tests.support import piv_service as p
from tests.support.live_server import serve

from cardvault.clients.common.api import CardvaultApi
from cardvault.clients.connector.relay import ServiceRelay
from cardvault.clients.connector.runner import insert_for_holder
from cardvault.services.signin.engine import Engine
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.web.app import create_app
from cardvault.web.deps import runtime
from cardvault.web.ui.headers import ALL as SECURITY_HEADERS

APDU = "/api/v1/piv/apdu"
GET_CHUID = bytes.fromhex("00CB3FFF055C035FC10200")
REQUEST_ID = "test-request-0001"


class Served:
    """The whole app over HTTP, counting the requests FastAPI's dependency injection served."""

    def __init__(self, rt: Runtime) -> None:
        self.rt, self.injected = rt, 0
        self.app = create_app(rt)
        self.app.dependency_overrides[runtime] = self._runtime

    async def _runtime(self) -> Runtime:
        self.injected += 1
        return self.rt


@pytest.fixture
def served(rt: Runtime, operator: Actor) -> Iterator[tuple[Served, httpx.Client]]:
    a.local_network(rt, operator)  # the ingress gate admits this client
    app = Served(rt)
    with serve(app.app) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield app, client


@pytest.fixture
def use(rt: Runtime, operator: Actor) -> p.InUse:
    return p.issued_and_enrolled(rt, operator, Engine(rt))


def _assert_edge_headers(answer: httpx.Response) -> None:
    assert answer.headers["x-request-id"] == REQUEST_ID
    for name, value in SECURITY_HEADERS:
        assert answer.headers[name.decode()] == value.decode()


def test_an_apdu_is_answered_without_fastapi_and_logged_as_its_route(
    served: tuple[Served, httpx.Client], use: p.InUse, caplog: pytest.LogCaptureFixture
) -> None:
    app, client = served
    answers: list[httpx.Response] = []
    client.headers["x-request-id"] = REQUEST_ID
    client.event_hooks["response"] = [answers.append]
    api = CardvaultApi(client)
    key = base64.b64encode(use.session_key).decode()
    inserted = insert_for_holder(api, token=use.token, session_key=key)
    injected = app.injected
    assert injected >= 1  # opening the link went through FastAPI
    relay = ServiceRelay(api, inserted.credentials)
    with caplog.at_level(logging.INFO, logger="cardvault.request"):
        for _ in range(3):
            assert relay.relay(GET_CHUID)[-2:] == b"\x90\x00"
    assert app.injected == injected  # no APDU reached FastAPI's dependency injection
    apdus = [r for r in answers if r.request.url.path == APDU]
    assert len(apdus) == 3
    for answer in apdus:
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/jose"
        assert answer.headers["cache-control"] == "no-store"
        _assert_edge_headers(answer)
    events = [getattr(r, "event", {}) for r in caplog.records]
    logged = [e for e in events if e.get("route") == APDU]
    assert [(e["method"], e["status"]) for e in logged] == [("POST", 200)] * 3


@pytest.mark.parametrize(
    ("headers", "body", "status", "code"),
    [
        ({"content-type": "application/json"}, b'{"apdu": "AA=="}', 422, "invalid_input"),
        ({"content-type": "application/jose"}, b"not.a.jwe", 422, "envelope_malformed"),
        ({"content-type": "application/jose"}, b"e" * 70_000, 413, "too_large"),
    ],
)
def test_a_refused_apdu_is_a_problem_with_the_usual_headers(
    served: tuple[Served, httpx.Client],
    headers: dict[str, str],
    body: bytes,
    status: int,
    code: str,
) -> None:
    _, client = served
    refused = client.post(APDU, content=body, headers={**headers, "x-request-id": REQUEST_ID})
    assert refused.status_code == status, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert (problem["code"], problem["status"], problem["instance"]) == (code, status, APDU)
    _assert_edge_headers(refused)
    # what a route FastAPI serves answers to the same body
    routed = client.post("/api/v1/piv/pin/status", content=body, headers=headers).json()
    assert (routed["code"], routed["status"]) == (code, status)


def test_other_methods_still_reach_fastapi(served: tuple[Served, httpx.Client]) -> None:
    _, client = served
    refused = client.get(APDU, headers={"x-request-id": REQUEST_ID})
    assert refused.status_code == 405
    assert refused.json()["code"] == "method_not_allowed"
    _assert_edge_headers(refused)
