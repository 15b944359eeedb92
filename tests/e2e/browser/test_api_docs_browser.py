"""The interactive API docs work in Chromium under the strict Content-Security-Policy, from
the package alone (no request leaves the service)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect
from tests.e2e.browser.conftest import Live
from tests.support import auth as a

from cardvault.services.system.runtime import Actor

pytestmark = [pytest.mark.browser]


def test_swagger_ui_lists_the_operations_without_a_csp_violation_or_outside_request(
    browser: Browser, live: Live, operator: Actor
) -> None:
    a.local_network(live.rt, operator)
    context = browser.new_context()
    page = context.new_page()
    complaints: list[str] = []
    outside: list[str] = []
    page.on("console", lambda m: complaints.append(m.text) if m.type == "error" else None)
    page.on("request", lambda r: None if r.url.startswith(live.url) else outside.append(r.url))
    try:
        answer = page.goto(f"{live.url}/api/v1/docs")
        assert answer is not None
        assert "script-src 'self'" in answer.headers["content-security-policy"]
        expect(page.get_by_text("/api/v1/auth/login").first).to_be_visible(timeout=20000)
        assert page.title() == "cardvault API: interactive documentation"
    finally:
        context.close()
    assert not [c for c in complaints if "Content Security Policy" in c], complaints
    assert outside == []
