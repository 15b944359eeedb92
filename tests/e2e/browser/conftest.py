"""Browser tier: Debian's Chromium, headless, driven by Playwright; security keys are
Chromium's own virtual authenticators (CDP ``WebAuthn`` domain).

Never ``playwright install``: the browser is the system's ``/usr/bin/chromium``
(scripts/install-system-deps). Every host but localhost resolves to nothing, so the
browser makes no network connections of its own.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import Browser, CDPSession, Page, Playwright, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-system-deps")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    yield browser
    browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


@dataclass
class VirtualKey:
    """One of Chromium's virtual authenticators, plugged into one page."""

    cdp: CDPSession
    authenticator_id: str

    def remove(self) -> None:
        self.cdp.send(
            "WebAuthn.removeVirtualAuthenticator", {"authenticatorId": self.authenticator_id}
        )

    def credentials(self) -> list[dict[str, Any]]:
        got = self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": self.authenticator_id})
        creds: list[dict[str, Any]] = got["credentials"]
        return creds


def plug_in_key(page: Page, *, user_verification: bool = True, verified: bool = True) -> VirtualKey:
    """A USB CTAP2 key with resident keys; touched automatically; with or without a PIN."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "ctap2Version": "ctap2_1",
                "transport": "usb",
                "hasResidentKey": True,
                "hasUserVerification": user_verification,
                "isUserVerified": verified,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return VirtualKey(cdp=cdp, authenticator_id=added["authenticatorId"])
