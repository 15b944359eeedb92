"""The vRA Manager's audit log and sign-in page in headless Chromium at 1280 pixels: the
log's times on one line and the table without a sideways scroll; one sign-in field for an
email address or a Windows account, its error linked from the summary."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from tests.e2e.browser.conftest import Live, sign_in
from tests.support import auth as a
from tests.support import factories as f
from tests.support import phones as ph
from tests.support import portal as p
from tests.support import ra_web as w

from cardvault.services.cards import methods
from cardvault.services.signin.engine import Engine
from cardvault.services.system.runtime import Actor

pytestmark = [pytest.mark.browser, pytest.mark.slow]
WIDE = {"width": 1280, "height": 900}


def test_the_audit_log_reads_on_one_screen_at_1280_pixels(
    page: Page, live: Live, operator: Actor
) -> None:
    rt = live.rt
    a.open_org(rt, operator, "ORGA")
    ra = w.ra_user(rt, operator, "ORGA", role="ra_agent", forename="Rana", surname="Issuer")
    alice = a.holder(rt, operator, "ORGA", forename="Alice", surname="Smith")
    ph.pair(rt, operator, alice.card.serial, "ORGA")
    p.lock_by_email(Engine(rt), alice.email)
    page.set_viewport_size(WIDE)
    sign_in(page, live, ra)
    page.get_by_role("link", name="Audit log").click()

    table = page.get_by_role("table")
    expect(table.get_by_role("columnheader")).to_have_text(
        ["When", "What happened", "Outcome", "Reason", "Who acted", "Person", "Card"]
    )
    times = table.locator("tbody time")
    expect(times.first).to_be_visible()
    assert times.count() >= 20
    # an inline element that wraps is laid out as one box per line
    lines = times.evaluate_all("els => els.map(e => e.getClientRects().length)")
    assert set(lines) == {1}, lines
    heights = times.evaluate_all("els => els.map(e => e.getBoundingClientRect().height)")
    line_height = times.first.evaluate("e => parseFloat(getComputedStyle(e).lineHeight)")
    assert max(heights) < 1.5 * line_height
    wrap = page.locator(".table-wrap")
    assert wrap.evaluate("e => e.scrollWidth <= e.clientWidth"), "the table scrolls sideways"

    locked = table.get_by_role("row").filter(has_text="Card locked: 3 wrong passcodes")
    expect(locked).to_have_count(1)
    expect(locked.get_by_role("cell").nth(1)).to_have_attribute("title", "Action code: card.locked")
    expect(locked.locator("code")).to_have_text("card.locked")
    chosen = table.get_by_role("row").filter(has_text="Started working in the vRA Manager")
    expect(chosen.get_by_role("cell").nth(4)).to_have_text("Rana Issuer (RA agent)")
    expect(table).not_to_contain_text("anonymous")
    expect(table).not_to_contain_text("holder:")


def test_one_field_signs_in_with_a_windows_account_and_explains_a_mistake(
    page: Page, live: Live, operator: Actor
) -> None:
    rt = live.rt
    a.open_org(rt, operator, "ORGA")
    ra = w.ra_user(rt, operator, "ORGA", forename="Rana", surname="Issuer")
    methods.add_ad_account(
        rt, operator, serial=ra.holder.card.serial, org_code="ORGA", account="ORGA\\rana"
    )
    page.set_viewport_size(WIDE)
    page.goto(f"{live.url}/ra")
    expect(page.get_by_role("radio")).to_have_count(0)
    field = page.get_by_label("Email address or Windows account (DOMAIN\\name)")
    expect(field).to_have_attribute("autocomplete", "username")
    expect(page.get_by_role("button", name="Use a security key")).to_be_visible()

    field.fill("rana")
    page.get_by_label("Passcode").fill(f.STRONG_PASSCODE)
    page.get_by_role("button", name="Continue").click()
    summary = page.get_by_role("alert")
    expect(summary).to_be_focused()
    mistake = summary.get_by_role("link", name="Enter your email address, like name@example.org")
    expect(mistake).to_contain_text("HOSPITAL\\jsmith")
    mistake.click()
    expect(field).to_be_focused()
    expect(field).to_have_value("rana")  # kept; the passcode is not
    expect(page.get_by_label("Passcode")).to_have_value("")

    field.fill("ORGA\\rana")
    page.get_by_label("Passcode").fill(f.STRONG_PASSCODE)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_label("Enter the code from your authenticator app")).to_be_focused()
    page.keyboard.type(w.fresh_code(ra))
    page.keyboard.press("Enter")
    expect(
        page.get_by_role("group", name="Which organisation and role are you working in?")
    ).to_be_visible()
