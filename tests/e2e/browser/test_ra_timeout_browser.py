"""The vRA Manager's time limits in headless Chromium (WCAG 2.2.1 Timing Adjustable).

The browser's clock (Playwright's fake timers) and the server's (``rt.clock``) are moved
forward together, so a short configured idle limit runs out in a second of real time. The
server decides: the page only asks it, and "Stay signed in" moves the limit in the database.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select
from tests.e2e.browser.conftest import Live, shot, sign_in
from tests.support import auth as a
from tests.support import factories as f
from tests.support import ra_web as w
from tests.support.a11y import check_now
from tests.support.portal import Clock

from cardvault.services.system.runtime import Actor
from cardvault.store.models import CardSession, WebSession

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _signed_in_row(live: Live) -> tuple[WebSession, CardSession]:
    with live.rt.db() as s:
        web = s.scalar(select(WebSession).where(WebSession.card_session_id.is_not(None)))
        assert web is not None
        card = s.get(CardSession, web.card_session_id)
        assert card is not None
        return web, card


def _advance(page: Page, clock: Clock, seconds: int) -> None:
    """Move the server's clock and the browser's together."""
    clock.advance(seconds=seconds)
    page.clock.fast_forward(seconds * 1000)


def _start(page: Page, live: Live, operator: Actor) -> tuple[Clock, w.RaUser, str]:
    rt = live.rt
    a.open_org(rt, operator, "ORGA")
    ra = w.ra_user(rt, operator, "ORGA")
    bob = f.issued_card(rt, operator, "ORGA", forename="Bob", surname="Newcomer")
    clock = Clock(datetime.now(UTC))
    rt.clock = clock
    page.clock.install()
    sign_in(page, live, ra)
    return clock, ra, bob.user_id


def test_the_idle_warning_comes_two_minutes_ahead_and_stay_signed_in_extends_on_the_server(
    page: Page, live: Live, operator: Actor
) -> None:
    live.rt.settings.web_idle_minutes = 3
    clock, _ra, bob = _start(page, live, operator)
    page.goto(f"{live.url}/ra/persons/{bob}/enrol")
    expect(page.locator("#session-limits")).to_contain_text(
        "signed out after 3 minutes without activity, and 12 hours after your session began"
    )
    page.get_by_label("Email address").fill("bob@example.org")
    dialog = page.get_by_role("dialog")

    # another tab that loads a page keeps the session alive: this one does not warn early
    other = page.context.new_page()
    _advance(page, clock, 50)
    other.goto(f"{live.url}/ra/persons")
    _advance(page, clock, 11)
    expect(dialog).to_be_hidden()
    _advance(page, clock, 49)  # two minutes before the end the other tab's load made
    expect(dialog).to_be_visible()
    expect(dialog).to_have_accessible_name("You will be signed out soon")
    expect(dialog).to_contain_text("We will sign you out in 2 minutes")
    expect(dialog).to_contain_text("the holder's passcode and their security questions")
    stay = dialog.get_by_role("button", name="Stay signed in")
    expect(stay).to_be_focused()
    expect(dialog.get_by_role("button", name="Sign out")).to_be_visible()
    shot(page, "13-timeout-warning")
    check_now(page)

    stay.click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_label("Email address")).to_be_focused()  # back where the RA was
    expect(page.get_by_label("Email address")).to_have_value("bob@example.org")
    expect(other.get_by_role("dialog")).to_be_hidden()  # the other tab heard of it
    web, card = _signed_in_row(live)
    assert web.idle_expires_at == clock.now + timedelta(minutes=3)
    assert card.idle_expires_at == clock.now + timedelta(minutes=60)
    other.close()

    # nothing more happens: two minutes ahead it warns again, then the session ends
    _advance(page, clock, 61)
    expect(dialog).to_be_visible()
    _advance(page, clock, 120)
    expect(page.get_by_role("heading", level=1)).to_have_text("You have been signed out")
    expect(page.locator("main")).to_contain_text("nothing happened on the page for 3 minutes")
    expect(page).to_have_url(f"{live.url}/ra/signed-out?why=idle")
    page.goto(f"{live.url}/ra/persons")
    expect(page.get_by_role("heading", name="Sign in to the vRA Manager")).to_be_visible()


def test_sign_out_in_the_warning_ends_the_session(page: Page, live: Live, operator: Actor) -> None:
    live.rt.settings.web_idle_minutes = 3
    clock, _ra, bob = _start(page, live, operator)
    page.goto(f"{live.url}/ra/persons/{bob}")
    _advance(page, clock, 61)
    page.get_by_role("dialog").get_by_role("button", name="Sign out").click()
    expect(page.locator(".notice")).to_contain_text("You have signed out")
    with live.rt.db() as s:
        assert s.scalar(select(WebSession).where(WebSession.card_session_id.is_not(None))) is None
        assert s.scalar(select(CardSession)) is None


def test_the_absolute_limit_is_warned_of_and_cannot_be_extended(
    page: Page, live: Live, operator: Actor
) -> None:
    live.rt.settings.web_absolute_minutes = 5
    clock, _ra, bob = _start(page, live, operator)
    page.goto(f"{live.url}/ra/persons/{bob}")
    expect(page.locator("#session-limits")).to_contain_text(
        "15 minutes without activity, and 5 minutes after your session began"
    )
    dialog = page.get_by_role("dialog")
    _advance(page, clock, 3 * 60 + 1)
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("signed in for the longest time allowed (5 minutes)")
    expect(dialog).to_contain_text("cannot be extended")
    expect(dialog.get_by_role("button", name="Stay signed in")).to_have_count(0)
    dialog.get_by_role("button", name="Close this message").click()
    expect(dialog).to_be_hidden()
    _advance(page, clock, 2 * 60)
    expect(page).to_have_url(f"{live.url}/ra/signed-out?why=absolute")
    expect(page.locator("main")).to_contain_text("a session lasts at most")


def test_without_javascript_the_limit_is_said_beside_the_form(
    browser: Browser, live: Live, operator: Actor
) -> None:
    rt = live.rt
    a.open_org(rt, operator, "ORGA")
    ra = w.ra_user(rt, operator, "ORGA")
    bob = f.issued_card(rt, operator, "ORGA", forename="Bob", surname="Newcomer")
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(15000)
    try:
        page.goto(f"{live.url}/ra")
        # Playwright's text matching skips <noscript>; the rendered text (innerText) has it
        note = page.locator("form[action='/ra'] .timeout-note")
        expect(note).to_be_visible()
        assert "this form stops working after 15 minutes without activity" in note.inner_text()
        page.get_by_label("Email address or Windows account").fill(ra.email)
        page.get_by_label("Passcode").fill(f.STRONG_PASSCODE)
        page.get_by_role("button", name="Continue").click()
        page.get_by_label("Enter the code from your authenticator app").fill(w.fresh_code(ra))
        page.get_by_role("button", name="Sign in").click()
        page.get_by_label("(ORGA)", exact=False).check()
        page.get_by_role("button", name="Continue").click()
        page.goto(f"{live.url}/ra/persons/{bob.user_id}/enrol")
        note = page.locator("form:has(button:text-is('Enrol')) .timeout-note")
        expect(note).to_be_visible()
        assert "you are signed out after 15 minutes without activity" in note.inner_text()
        assert "Without JavaScript this page cannot warn you first" in note.inner_text()
        assert note.evaluate("el => el.parentElement.nextElementSibling.textContent") == "Enrol"
        expect(page.get_by_role("dialog")).to_have_count(0)  # no script: no dialog either
        expect(page.locator("#session-limits")).to_contain_text("15 minutes without activity")
    finally:
        context.close()
