"""Headless Chromium (Debian's ``chromium``) driven by Playwright against the app served by
uvicorn in a thread at ``http://localhost:<port>``. Nothing is downloaded: Playwright uses
the system browser through ``executable_path``; ``playwright install`` is never run.

Chromium treats ``http://localhost`` as a secure context, so the ``Secure``, ``__Host-``
session cookie and WebAuthn both work there without TLS.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from tests.support import factories as f
from tests.support import ra_web as w
from tests.support.a11y import Checker, watch
from tests.support.live_server import free_port, serve

from cardvault.services.system.runtime import Runtime
from cardvault.web.app import create_app

SHOTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "ra-guide"


@dataclass(frozen=True)
class Live:
    url: str
    rt: Runtime


@pytest.fixture
def live(rt: Runtime) -> Iterator[Live]:
    port = free_port()
    url = f"http://localhost:{port}"
    rt.settings.public_url = url
    rt.settings.webauthn_rp_id = "localhost"
    rt.settings.webauthn_origins = [url]
    with serve(create_app(rt), port=port) as served:
        assert served == url
        yield Live(url=url, rt=rt)


@pytest.fixture
def page(browser: Browser, a11y_checker: Checker) -> Iterator[Page]:
    """A fresh context; every page state it loads is checked for accessibility at the end."""
    viewport = {"width": 1200, "height": 900}
    context = browser.new_context(viewport=viewport, accept_downloads=True)
    states = watch(context, viewport)
    pg = context.new_page()
    pg.set_default_timeout(15000)
    yield pg
    try:
        states.assert_accessible(a11y_checker, context)
    finally:
        context.close()


def shot(page: Page, name: str) -> None:
    """Keep a screenshot of a main page as a test artefact (docs/ra/screenshots/ has copies)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Page, live: Live, ra: w.RaUser, *, screenshots: bool = False) -> None:
    """Sign in with the email address, the passcode and a code; choose the organisation."""
    page.goto(f"{live.url}/ra")
    if screenshots:
        shot(page, "01-sign-in")
    page.get_by_label("Email address or Windows account").fill(ra.email)
    page.get_by_label("Passcode").fill(f.STRONG_PASSCODE)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_label("Enter the code from your authenticator app")).to_be_focused()
    page.keyboard.type(w.fresh_code(ra))
    page.keyboard.press("Enter")
    expect(page.get_by_role("group", name=re.compile("Which organisation"))).to_be_visible()
    if screenshots:
        shot(page, "02-choose-role")
    page.get_by_label(re.compile(f"\\({ra.org}\\)")).check()
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Find a person")).to_be_visible()
