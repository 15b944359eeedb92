"""Headless Chromium (Debian's ``chromium``, through Playwright's ``executable_path``; never
``playwright install``) against the app served by uvicorn in a thread at
``http://localhost:<port>``, with the outbox dispatcher running inside the server as in
production, sending to a real SMTP server (aiosmtpd) started by the test.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page
from tests.support.a11y import Checker, watch
from tests.support.live_server import free_port, serve
from tests.support.notify_servers import Mailbox, SmtpServer, smtp_server, tls

from cardvault.services.system.runtime import Runtime
from cardvault.web.app import create_app

__all__ = ["smtp_server", "tls"]

ROOT = Path(__file__).resolve().parents[3]
SHOTS = ROOT / "test-artifacts" / "portal"
#: the holder guide's screenshots (docs/user/img), written when ``scripts/doc-screenshots``
#: runs the browser tests with CARDVAULT_DOC_SHOTS=1
DOC_SHOTS = ROOT / "docs" / "user" / "img"


@dataclass(frozen=True)
class Live:
    url: str
    rt: Runtime
    mailbox: Mailbox

    def wait_for_mail(self, count: int, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while len(self.mailbox.received) < count:
            assert time.monotonic() < deadline, f"{count} emails expected by now"
            time.sleep(0.05)


@pytest.fixture
def live(request: pytest.FixtureRequest, rt: Runtime, smtp_server: SmtpServer) -> Iterator[Live]:
    """The server; ``parametrize("live", ["outbox"], indirect=True)`` runs it as ``make run``
    does (development mode, file outbox) instead of sending to the SMTP server."""
    port = free_port()
    url = f"http://localhost:{port}"
    settings = rt.settings
    settings.public_url = url
    if getattr(request, "param", "smtp") == "outbox":
        settings.development, settings.mail_mode = True, "outbox"
    else:
        settings.mail_mode, settings.smtp_security = "smtp", "none"
        settings.smtp_host, settings.smtp_port = "127.0.0.1", smtp_server.port
    settings.notify_poll_seconds = 0.5
    settings.reset_request_min_seconds = 0
    with serve(create_app(rt), port=port) as served:
        assert served == url
        yield Live(url=url, rt=rt, mailbox=smtp_server.mailbox)


@pytest.fixture
def page(browser: Browser, a11y_checker: Checker) -> Iterator[Page]:
    """A fresh context; every page state it loads is checked for accessibility at the end."""
    context = browser.new_context()
    states = watch(context)
    pg = context.new_page()
    pg.set_default_timeout(15000)
    yield pg
    try:
        states.assert_accessible(a11y_checker, context)
    finally:
        context.close()


def shot(page: Page, name: str, *, doc: str | None = None) -> None:
    """Keep a screenshot of the page as a test artefact (test-artifacts/portal/); with
    ``doc``, also as the holder guide's ``docs/user/img/<doc>.png`` when asked for."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    if doc and os.environ.get("CARDVAULT_DOC_SHOTS") == "1":
        DOC_SHOTS.mkdir(parents=True, exist_ok=True)
        page.set_viewport_size({"width": 1024, "height": 768})
        page.screenshot(path=str(DOC_SHOTS / f"{doc}.png"), full_page=True)
