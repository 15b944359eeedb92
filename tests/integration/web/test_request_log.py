"""The request log: one JSON event per request with its request id, passed on from
``X-Request-ID`` or made, into the answer and the audit trail; and no secret in any log
line, whatever the request carried (a passcode typed into the vRA Manager's form travels
in the clear inside TLS; link tokens travel in paths)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select
from tests.support import auth as a
from tests.support import factories as f
from tests.support import ra_web

from cardvault.clients.agent import core
from cardvault.clients.common.api import CardvaultApi, ServiceError
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import AuditEvent
from cardvault.web.request_log import JsonFormatter

#: the test's own HTTP client logs in the same process; the server uses neither
CLIENT_SIDE = ("httpx", "httpcore")


class Lines(logging.Handler):
    """Every log line of the server, formatted as `cardvault serve` writes them."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(CLIENT_SIDE):
            self.lines.append(self.format(record))

    def events(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.lines]

    def requests(self) -> list[dict[str, object]]:
        return [e for e in self.events() if e.get("event") == "http.request"]


@pytest.fixture
def logs() -> Iterator[Lines]:
    handler = Lines()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture
def http(live_url: str, rt: Runtime, operator: Actor) -> Iterator[httpx.Client]:
    a.local_network(rt, operator)
    with httpx.Client(base_url=live_url, timeout=30) as client:
        yield client


def test_one_event_per_request_with_the_id_given_or_made(http: httpx.Client, logs: Lines) -> None:
    given = http.get("/healthz", headers={"X-Request-ID": "lb-7f3a9c2e-0001"})
    made = http.get("/readyz")
    forged = http.get("/healthz", headers={"X-Request-ID": 'x" {"level":"critical"}'})
    assert given.headers["x-request-id"] == "lb-7f3a9c2e-0001"
    assert len(made.headers["x-request-id"]) == 36
    assert forged.headers["x-request-id"] not in ("", 'x" {"level":"critical"}')

    events = logs.requests()
    assert [(e["route"], e["status"], e["request_id"]) for e in events] == [
        ("/healthz", 200, "lb-7f3a9c2e-0001"),
        ("/readyz", 200, made.headers["x-request-id"]),
        ("/healthz", 200, forged.headers["x-request-id"]),
    ]
    for event in events:
        assert event["method"] == "GET"
        assert event["client"] == "127.0.0.1"
        assert isinstance(event["duration_ms"], float)
        assert event["logger"] == "cardvault.request"
        assert event["level"] == "info"


def test_the_request_id_reaches_the_audit_trail(
    http: httpx.Client, rt: Runtime, operator: Actor, logs: Lines
) -> None:
    a.open_org(rt, operator)
    holder = a.holder(rt, operator)
    data = core.LoginInput(
        identifier_kind="email", identifier=holder.email, passcode="wrong 1 wrong"
    )
    api = CardvaultApi(http)
    http.headers["X-Request-ID"] = "trace-0123456789"
    with pytest.raises(ServiceError):
        core.login(api, "test", data, totp=holder.code(), ask_code=lambda _: "")
    with rt.db() as s:
        refused = s.scalars(select(AuditEvent).where(AuditEvent.action == "auth.passcode")).one()
    assert refused.request_id == "trace-0123456789"
    assert refused.outcome == "failure"


def test_no_passcode_token_or_code_reaches_the_log(
    rt: Runtime, operator: Actor, logs: Lines
) -> None:
    """Sign in to the vRA Manager (the passcode in a form), fail with a wrong one, open a
    portal link: then look for each secret in every line the process logged."""
    ra_web_org = a.open_org(rt, operator)
    user = ra_web.ra_user(rt, operator, ra_web_org)
    wrong = "Hunter2-Wrong-Passcode-77"
    with ra_web.client(rt) as c:
        refused = ra_web.post(c, "/ra", identifier=user.email, passcode=wrong)
        assert refused.status_code in (200, 400, 401), refused.status_code
        ra_web.sign_in(c, user)
        token = "reset-token-Zq8vJ2mW9xR4kT6n"
        c.get(f"/portal/reset/{token}?code=123456")
    text = "\n".join(logs.lines)
    assert logs.requests(), "no request was logged"
    for secret in (f.STRONG_PASSCODE, wrong, token, user.holder.totp_secret):
        assert secret not in text, f"{secret!r} is in the log"
    routes = {e["route"] for e in logs.requests()}
    assert "/ra" in routes
