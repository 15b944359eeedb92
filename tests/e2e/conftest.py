"""The one headless Chromium of a test process, shared by every browser test.

Playwright's sync API allows one running instance per process (a second ``sync_playwright()``
while the first is alive fails with "using Playwright Sync API inside the asyncio loop"),
and pytest-xdist may put the vRA Manager's and the portal's browser tests in one worker; so
the session-scoped ``browser`` lives here, above both. Debian's ``chromium`` is driven
through ``executable_path``; ``playwright install`` is never run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright
from tests.support.a11y import Checker

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-system-deps")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def a11y_checker(browser: Browser) -> Checker:
    """Replays each page state the browser tests load, for axe-core and the reflow check."""
    return Checker(browser)
