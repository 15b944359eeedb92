"""Two vRA Manager pages of the issue 19 review in headless Chromium (each page state checked
with axe-core by the ``page`` fixture): adding a person after a sign-in older than 10 minutes
asks the RA to confirm it is them first, and the settings page's second factors allowed
refuse an empty choice, then save one."""

from __future__ import annotations

import re
from datetime import timedelta

from playwright.sync_api import Page, expect
from tests.e2e.browser.conftest import Live, sign_in
from tests.support import auth as a
from tests.support import factories as f
from tests.support import ra_web as w

from cardvault.services.system.runtime import Actor

LATER = 11 * 60


def test_adding_a_person_after_an_old_sign_in_asks_to_confirm_first(
    page: Page, live: Live, operator: Actor
) -> None:
    a.open_org(live.rt, operator, "ORGA")
    ra = w.ra_user(live.rt, operator, "ORGA", forename="Rana", surname="Issuer")
    sign_in(page, live, ra)
    real = live.rt.clock
    live.rt.clock = lambda: real() + timedelta(seconds=LATER)
    try:
        page.get_by_role("link", name="Add a person", exact=True).click()
        expect(page.get_by_role("heading", name=re.compile("Confirm it is you"))).to_be_visible()
        page.get_by_label("Passcode").fill(f.STRONG_PASSCODE)
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_label("Enter the code from your authenticator app")).to_be_focused()
        page.keyboard.type(w.fresh_code(ra, LATER))
        page.keyboard.press("Enter")
        page.get_by_label("User id").fill("555 000 900 201")
        page.get_by_label("Forename").fill("Nora")
        page.get_by_label("Surname").fill("Newcomer")
        page.get_by_role("button", name="Add the person").click()
        expect(page.get_by_role("status")).to_contain_text("Nora Newcomer is added to ORGA")
    finally:
        live.rt.clock = real


def test_the_second_factors_allowed_keep_at_least_one(
    page: Page, live: Live, operator: Actor
) -> None:
    a.open_org(live.rt, operator, "ORGA")
    ra = w.ra_user(live.rt, operator, "ORGA", forename="Rana", surname="Admin")
    sign_in(page, live, ra)
    page.get_by_role("link", name="Settings").click()
    factors = page.get_by_role("group", name="Second factors allowed", exact=True)
    boxes = factors.get_by_role("checkbox")
    for i in range(boxes.count()):
        boxes.nth(i).uncheck()
    page.get_by_role("button", name="Save the settings").click()
    summary = page.get_by_role("alert")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("Allow at least one second factor")
    factors.get_by_label("Authenticator app: a 6-digit code").check()
    page.get_by_role("button", name="Save the settings").click()
    expect(page.get_by_role("status")).to_contain_text("Settings saved: second factors")
    expect(factors.get_by_label("Security key")).not_to_be_checked()
