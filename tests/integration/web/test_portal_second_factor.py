"""The reset's second step over HTTP: the push pages without JavaScript, the script's status
and security-key endpoints (JSON, CSRF), and what the page offers for each kind of card."""

from __future__ import annotations

import logging
import re

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.support import auth as a
from tests.support import factories as f
from tests.support import keys as k
from tests.support import phones as ph
from tests.support import portal as p
from tests.support import ra_web
from tests.support.soft_ctap2 import SoftCtap2Device

from cardvault.services.recovery import reset as recovery
from cardvault.services.signin.engine import Engine
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.web.portal.steps import RedactLinkTokens

NUMBER = re.compile(r'id="push-number"[^>]*>(\d\d)<')
SHARED_SCRIPTS = {"/static/ui/timeout.js", "/static/ui/error-summary.js"}


def _locked(rt: Runtime, email: str) -> str:
    p.lock_by_email(Engine(rt), email)
    return p.newest_reset_link(rt)


def _post(c: TestClient, url: str, page_url: str, **fields: str) -> httpx.Response:
    page = c.get(page_url)
    assert page.status_code == 200, page.text[:400]
    return c.post(url, data={"csrf_token": ra_web.csrf(page.text), **fields})


def _at_factor(c: TestClient, token: str) -> httpx.Response:
    url = f"/portal/reset/{token}"
    step = _post(c, url, url, answer1=f.ANSWERS[0], answer2=f.ANSWERS[1])
    assert step.headers["location"] == f"{url}/factor"
    page = c.get(f"{url}/factor")
    assert page.status_code == 200
    return page


def _send_push(c: TestClient, token: str) -> tuple[str, str]:
    """Choose "Send a request to my phone": the waiting page's address and the challenge."""
    factor_url = f"/portal/reset/{token}/factor"
    sent = _post(c, f"{factor_url}/push", factor_url)
    assert sent.status_code == 303
    waiting_url = sent.headers["location"]
    return waiting_url, waiting_url.rsplit("/", 1)[1]


@pytest.fixture
def phone_card(rt: Runtime, operator: Actor) -> tuple[ph.Phone, str]:
    a.open_org(rt, operator)
    card = f.active_card(rt, operator, email="phone.page@example.org")
    return ph.pair(rt, operator, card.serial), _locked(rt, "phone.page@example.org")


def test_a_push_through_the_pages_without_javascript(
    rt: Runtime, phone_card: tuple[ph.Phone, str]
) -> None:
    phone, token = phone_card
    c = ra_web.client(rt)
    factor_url = f"/portal/reset/{token}/factor"
    page = _at_factor(c, token)
    assert "Send a request to my phone" in page.text
    assert "Code from your authenticator app" in page.text  # the phone's own code
    assert "Registration Authority" not in page.text
    # nothing here needs a script of its own (every page has the timeout warning's and the
    # error summary's)
    assert set(re.findall(r'<script src="([^"]+)"', page.text)) == SHARED_SCRIPTS

    waiting_url, challenge_id = _send_push(c, token)
    assert waiting_url == f"{factor_url}/push/{challenge_id}"
    waiting = c.get(waiting_url)
    assert waiting.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in waiting.headers["content-security-policy"]
    assert '<script src="/static/ui/push-wait.js" defer>' in waiting.text
    number = NUMBER.search(waiting.text)
    assert number is not None

    early = _post(c, factor_url, waiting_url, method="authenticator", challenge_id=challenge_id)
    assert early.status_code == 409
    assert "has not answered the request yet" in early.text
    assert number.group(1) in early.text  # the same number, still shown
    assert recovery.open_reset(rt, token).tries_left == recovery.LINK_MAX_FAILURES

    phone.respond(rt, challenge_id, number.group(1))
    done = _post(c, factor_url, waiting_url, method="authenticator", challenge_id=challenge_id)
    assert done.headers["location"] == f"/portal/reset/{token}/passcode"


def test_a_denied_push_is_explained_on_the_factor_page(
    rt: Runtime, phone_card: tuple[ph.Phone, str]
) -> None:
    phone, token = phone_card
    c = ra_web.client(rt)
    factor_url = f"/portal/reset/{token}/factor"
    _at_factor(c, token)
    waiting_url, challenge_id = _send_push(c, token)
    phone.respond(rt, challenge_id, "", decision="deny")

    refused = _post(c, factor_url, waiting_url, method="authenticator", challenge_id=challenge_id)

    assert refused.status_code == 401
    assert 'href="#f-push"' in refused.text
    assert "denied on the phone. 2 tries left" in refused.text
    again = _post(c, f"{factor_url}/push", factor_url)  # the denial backs the phone off
    assert again.status_code == 429
    assert "Too many sign-in requests" in again.text


def test_the_scripts_status_endpoint_answers_json_to_this_browser_only(
    rt: Runtime, phone_card: tuple[ph.Phone, str]
) -> None:
    phone, token = phone_card
    c = ra_web.client(rt)
    _at_factor(c, token)
    waiting_url, challenge_id = _send_push(c, token)
    status_url = f"/portal/api/reset/{token}/push/{challenge_id}"
    assert c.get(status_url).json() == {"status": "pending"}
    number = NUMBER.search(c.get(waiting_url).text)
    assert number is not None
    phone.respond(rt, challenge_id, number.group(1))

    answered = c.get(f"{status_url}?wait=5")

    assert answered.json() == {"status": "approved"}
    assert answered.headers["cache-control"] == "no-store"
    stranger = ra_web.client(rt).get(status_url)
    assert stranger.status_code == 401
    assert stranger.headers["content-type"] == "application/problem+json"


def test_a_security_key_through_the_scripts_endpoints(rt: Runtime, operator: Actor) -> None:
    k.org(rt, operator)
    card = f.active_card(rt, operator, email="key.page@example.org")
    device = SoftCtap2Device(pin=k.PIN)
    k.register(rt, operator, card, device)
    token = _locked(rt, "key.page@example.org")
    c = ra_web.client(rt)
    page = _at_factor(c, token)
    assert 'id="key-form"' in page.text
    assert '<script src="/static/portal/reset-factor.js" defer>' in page.text
    assert "Send a request to my phone" not in page.text
    script_csrf = re.search(r'data-csrf="([^"]+)"', page.text)
    assert script_csrf is not None
    csrf = {"X-CSRF-Token": script_csrf.group(1)}
    api = f"/portal/api/reset/{token}/security-key"

    assert c.post(f"{api}/options").status_code == 403  # no CSRF token
    options = c.post(f"{api}/options", headers=csrf)
    assert options.headers["cache-control"] == "no-store"
    answer = k.key_answer(rt, device, options.json())
    garbled = {**answer, "response": {**answer["response"], "signature": "AAAA"}}
    assert c.post(api, json={"credential": answer}).status_code == 403

    refused = c.post(api, headers=csrf, json={"credential": garbled})
    assert refused.status_code == 401
    assert refused.json()["detail"].endswith("2 tries left with this link.")
    fresh = c.post(f"{api}/options", headers=csrf).json()
    done = c.post(api, headers=csrf, json={"credential": k.key_answer(rt, device, fresh)})
    assert done.json() == {"next": f"/portal/reset/{token}/passcode"}


def test_the_scripts_paths_are_redacted_in_the_access_log() -> None:
    path = "/portal/api/reset/" + "B" * 43 + "/push/x"
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", path, "1.1", 200),
        None,
    )
    RedactLinkTokens().filter(record)
    assert "B" * 43 not in record.getMessage()
    assert "/portal/api/reset/…/push/x" in record.getMessage()


@pytest.fixture(autouse=True)
def _quick(rt: Runtime) -> None:
    rt.settings.reset_request_min_seconds = 0
