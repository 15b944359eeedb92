"""Anonymous endpoints are rate-limited per source address and per identifier (issue 14).

The app is driven in-process with a chosen client address per client (TestClient's
``client=``), on SQLite and PostgreSQL; the counters are the in-process ones, a real Redis
(shared by two instances), or a Redis that is down.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.support import auth as a
from tests.support import factories as f
from tests.support.redis_server import DEAD_REDIS_URL, REDIS_URL, fresh_prefix, redis_or_skip

from cardvault.crypto import envelope
from cardvault.services.system.runtime import Actor, Runtime, open_runtime
from cardvault.store.models import Card, Notification
from cardvault.web.app import create_app

FLOODER = "203.0.113.7"
NEIGHBOUR = "198.51.100.9"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def limited(rt: Runtime, **rates: Any) -> Runtime:
    rt.settings = rt.settings.model_copy(
        update={"rate_limits_enabled": True, "reset_request_min_seconds": 0, **rates}
    )
    return rt


def browser(rt: Runtime, address: str, app: Any = None) -> TestClient:
    return TestClient(
        app or create_app(rt),
        base_url="https://testserver",
        client=(address, 40000),
        follow_redirects=False,
    )


def sign_in(c: TestClient, email: str, passcode: str, code: str | None = None) -> Any:
    """POST /api/v1/auth/login with a properly sealed envelope; (status, body or problem)."""
    jwk = c.get("/.well-known/jwks.json").json()["keys"][0]
    claims: dict[str, Any] = {
        "identifier": {"kind": "email", "value": email},
        "passcode": passcode,
    }
    if code:
        claims["second_factor"] = {"method": "totp", "code": code}
    sealed = envelope.seal_request(jwk, claims, now=time.time())
    response = c.post(
        "/api/v1/auth/login", content=sealed.token, headers={"content-type": envelope_type()}
    )
    if response.status_code == 200:
        return response, envelope.open_response(sealed.response_key, response.text)
    return response, response.json()


def envelope_type() -> str:
    return "application/jose"


def stranger() -> str:
    return f"nobody-{secrets.token_hex(4)}@example.org"


NETWORKS = ["198.51.100.0/24", "203.0.113.0/24", "127.0.0.0/8"]


@pytest.fixture(autouse=True)
def networks(rt: Runtime, operator: Actor) -> None:
    """The test addresses pass the ingress gate, so the limits are what answers."""
    f.org(rt, operator, "NETS", networks=NETWORKS)


@pytest.fixture
def holder(rt: Runtime, operator: Actor) -> a.HolderFixture:
    f.org(rt, operator, "ORG1", networks=NETWORKS)
    return a.holder(rt, operator)


@pytest.fixture(params=["local", "redis", "redis_down"])
def counters(request: pytest.FixtureRequest, rt: Runtime) -> str:
    """Which counters the app uses: in-process, a real Redis, or a Redis that is down."""
    if request.param == "redis":
        redis_or_skip()
        limited(rt, redis_url=REDIS_URL, redis_prefix=fresh_prefix())
    elif request.param == "redis_down":
        limited(rt, redis_url=DEAD_REDIS_URL, redis_prefix=fresh_prefix())
    return str(request.param)


def assert_rate_limited(response: Any, limit: str) -> dict[str, Any]:
    assert response.status_code == 429, response.text
    assert 1 <= int(response.headers["retry-after"]) <= 60
    problem: dict[str, Any] = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["code"] == "rate_limited"
    assert problem["limit"] == limit
    assert problem["retry_after"] == int(response.headers["retry-after"])
    return problem


def test_a_flood_from_one_address_leaves_another_served(
    rt: Runtime, holder: a.HolderFixture, counters: str
) -> None:
    limited(rt, rate_limit_signin="5/1m")
    app = create_app(rt)
    flooder, neighbour = browser(rt, FLOODER, app), browser(rt, NEIGHBOUR, app)

    answers = [sign_in(flooder, stranger(), "guess 123 guess")[0] for _ in range(5)]
    assert [r.status_code for r in answers] == [401] * 5
    problem = assert_rate_limited(sign_in(flooder, stranger(), "guess")[0], "address")
    assert problem["detail"].startswith("There have been too many attempts from your network.")
    # the holder's right passcode from the flooded address waits too …
    assert_rate_limited(sign_in(flooder, holder.email, f.STRONG_PASSCODE)[0], "address")

    # … while the same holder elsewhere is served
    response, opened = sign_in(neighbour, holder.email, f.STRONG_PASSCODE, holder.code())
    assert response.status_code == 200, opened
    assert opened["session"]["card_serial"] == holder.card.serial

    if counters == "redis":  # every instance counts in the same window
        second = open_runtime(rt.settings)
        try:
            other_instance = browser(second, FLOODER)
            assert_rate_limited(sign_in(other_instance, stranger(), "guess")[0], "address")
        finally:
            second.close()


def test_an_identifier_throttled_from_many_addresses_answers_429_to_everyone(
    rt: Runtime, holder: a.HolderFixture
) -> None:
    """Not a lock, and silent to nobody: the card is untouched, the 429 says how long."""
    limited(rt, rate_limit_signin_identifier="2/1m")
    app = create_app(rt)
    for n in range(2):
        response, _ = sign_in(
            browser(rt, f"203.0.113.{20 + n}", app), holder.email, "wrong 1 2 3 x"
        )
        assert response.status_code == 401

    response, _ = sign_in(
        browser(rt, NEIGHBOUR, app), holder.email.upper(), f.STRONG_PASSCODE, holder.code()
    )
    problem = assert_rate_limited(response, "identifier")
    assert "for this account" in problem["detail"]
    with rt.db() as session:
        card = session.scalars(select(Card).where(Card.id == holder.card.card_id)).one()
        assert (card.status, card.failed_attempts) == ("active", 2)  # the refusal reserved none

    # an unknown identifier is counted the same way, so the 429 says nothing about existence
    nobody = stranger()
    for n in range(2):
        assert sign_in(browser(rt, f"203.0.113.{30 + n}", app), nobody, "x")[0].status_code == 401
    assert_rate_limited(sign_in(browser(rt, NEIGHBOUR, app), nobody, "x")[0], "identifier")
    # and other identifiers from the same address are served
    assert sign_in(browser(rt, NEIGHBOUR, app), stranger(), "x")[0].status_code == 401


def csrf_of(page: Any) -> str:
    found = CSRF.search(page.text)
    assert found, page.text[:300]
    return found.group(1)


def outbox_count(rt: Runtime) -> int:
    with rt.db() as session:
        return len(session.scalars(select(Notification.id)).all())


def test_the_forgotten_passcode_form_limits_per_address_and_per_email_with_a_page(
    rt: Runtime, holder: a.HolderFixture
) -> None:
    limited(rt, rate_limit_reset="4/15m", rate_limit_reset_identifier="2/15m")
    app = create_app(rt)
    c = browser(rt, FLOODER, app)
    token = csrf_of(c.get("/portal"))

    def ask(email: str, client: TestClient = c, csrf: str = token) -> Any:
        return client.post("/portal/forgotten", data={"identifier": email, "csrf_token": csrf})

    assert [ask(holder.email).status_code for _ in range(2)] == [200, 200]
    sent = outbox_count(rt)
    refused = ask(holder.email)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 900
    assert refused.headers["content-type"].startswith("text/html")
    assert '<h1 class="heading-l">Too many attempts</h1>' in refused.text
    assert "too many attempts for this account. Try again in 15 minutes." in refused.text
    assert outbox_count(rt) == sent  # no third email to the holder

    assert ask(stranger()).status_code == 200  # the address's fourth request (with the refused)
    assert "from your network" in ask(stranger()).text  # its fifth

    elsewhere = browser(rt, NEIGHBOUR, app)
    assert ask(stranger(), elsewhere, csrf_of(elsewhere.get("/portal"))).status_code == 200


def test_the_ra_sign_in_page_answers_a_flood_with_an_error_page(
    rt: Runtime, holder: a.HolderFixture
) -> None:
    limited(rt, rate_limit_signin="2/1m")
    c = browser(rt, FLOODER)
    token = csrf_of(c.get("/ra"))
    form = {"kind": "email", "identifier": stranger(), "passcode": "guess", "csrf_token": token}
    assert [c.post("/ra", data=form).status_code for _ in range(2)] == [401, 401]
    refused = c.post("/ra", data=form)
    assert refused.status_code == 429
    assert refused.headers["retry-after"].isdigit()
    assert "Too many attempts" in refused.text
    assert "from your network" in refused.text


def test_a_flood_of_new_browser_sessions_is_refused_but_a_kept_one_is_served(
    rt: Runtime,
) -> None:
    limited(rt, rate_limit_web_session="3/1m")
    app = create_app(rt)
    kept = browser(rt, FLOODER, app)
    assert kept.get("/portal").status_code == 200  # one session, cookie kept
    fresh = [browser(rt, FLOODER, app).get("/portal").status_code for _ in range(3)]
    assert fresh == [200, 200, 429]
    assert kept.get("/portal").status_code == 200
    assert browser(rt, NEIGHBOUR, app).get("/ra").status_code == 200


ANONYMOUS = [
    ("POST", "/api/v1/auth/login", "jose"),
    ("POST", "/api/v1/auth/factor", "jose"),
    ("POST", "/api/v1/auth/push", "json"),
    ("GET", "/api/v1/auth/push/x?transaction_id=" + "0" * 36, None),
    ("POST", "/api/v1/auth/qr", "json"),
    ("GET", "/api/v1/auth/qr/x", None),
    ("POST", "/api/v1/device/pair", "jose"),
    ("POST", "/api/v1/webauthn/assertion/begin", "json"),
    ("POST", "/api/v1/webauthn/assertion/complete", "json"),
    ("GET", "/api/v1/certificates/status?fingerprint=" + "0" * 64, None),
    ("POST", "/ra", "form"),
    ("POST", "/ra/login/code", "form"),
    ("POST", "/ra/login/push", "form"),
    ("GET", "/ra/api/login/push", None),
    ("POST", "/ra/login/key", "form"),
    ("POST", "/ra/login/key/passcode", "form"),
    ("POST", "/portal/forgotten", "form"),
    ("GET", "/portal/reset/" + "x" * 43, None),
    ("POST", "/portal/reset/" + "x" * 43 + "/factor", "form"),
    ("GET", "/portal/api/reset/" + "x" * 43 + "/push/y", None),
    ("GET", "/portal/invitation/" + "x" * 43, None),
    ("POST", "/portal/invitation/" + "x" * 43 + "/setup", "form"),
]


def test_every_anonymous_endpoint_is_limited_per_address(rt: Runtime) -> None:
    everything_once = {
        f"rate_limit_{bucket}": "1/1m"
        for bucket in ("signin", "reset", "portal", "pairing", "poll", "status")
    }
    app = create_app(limited(rt, **everything_once))
    bodies: dict[str | None, dict[str, Any]] = {
        "jose": {"content": "a.b.c.d.e", "headers": {"content-type": "application/jose"}},
        "json": {"json": {}},
        "form": {"data": {"csrf_token": "x"}},
        None: {},
    }
    for n, (method, path, body) in enumerate(ANONYMOUS):
        c = browser(rt, f"203.0.113.{100 + n}", app)  # an address of its own: buckets are shared
        first = c.request(method, path, **bodies[body])
        assert first.status_code not in (429, 500), (path, first.text[:300])
        second = c.request(method, path, **bodies[body])
        assert second.status_code == 429, (path, second.text[:300])
        assert second.headers["retry-after"].isdigit()
