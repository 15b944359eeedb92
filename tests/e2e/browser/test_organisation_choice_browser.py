"""The organisation-choice page in headless Chromium, with the axe-core check the ``page``
fixture runs on every page state (``tests/support/a11y.py``): an RA of two organisations
signs in by email, is refused without a choice (error summary), chooses ORGB, and then sees
only ORGB's roles."""

from __future__ import annotations

import re

import pyotp
from playwright.sync_api import Page, expect
from tests.e2e.browser.conftest import Live
from tests.support import factories as f
from tests.support import ra_web as w

from cardvault.services.system.runtime import Actor


def test_an_ra_of_two_organisations_chooses_one_on_an_accessible_page(
    page: Page, live: Live, operator: Actor
) -> None:
    user, secret = w.ra_of_two(live.rt, operator)
    page.goto(f"{live.url}/ra")
    page.get_by_label("Email address or Windows account").fill(user.email)
    page.get_by_label("Passcode").fill(f.STRONG_PASSCODE)
    page.get_by_role("button", name="Continue").click()
    group = page.get_by_role("group", name=re.compile("Which organisation are you signing in to"))
    expect(group).to_be_visible()

    page.get_by_role("button", name="Continue").click()  # no choice: the error summary
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("Choose the organisation you are signing in to.")

    page.get_by_label(re.compile(r"\(ORGB\)")).check()
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_label("Enter the code from your authenticator app")).to_be_focused()
    page.keyboard.type(pyotp.TOTP(secret).now())
    page.keyboard.press("Enter")
    expect(page.get_by_label(re.compile(r"\(ORGB\)"))).to_be_visible()
    expect(page.get_by_label(re.compile(r"\(ORGA\)"))).to_have_count(0)
