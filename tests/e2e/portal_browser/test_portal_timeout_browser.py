"""The portal's time limit in headless Chromium (WCAG 2.2.1): a reset page's form stops working
when its web session ends (the CSRF token is bound to it), so the page warns two minutes
ahead and "Stay on this page" extends the session on the server. The browser's clock and the
server's move together."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select
from tests.support import auth as a
from tests.support import factories as f
from tests.support import portal as p
from tests.support.a11y import check_now

from cardvault.services.signin.engine import Engine
from cardvault.services.system.runtime import Actor
from cardvault.store.models import WebSession

from .conftest import Live

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_reset_page_warns_before_its_form_times_out_and_stays_when_asked(
    live: Live, page: Page, operator: Actor
) -> None:
    rt = live.rt
    rt.settings.web_idle_minutes = 3
    a.open_org(rt, operator)
    h = a.holder(rt, operator, forename="Ann")
    p.lock(Engine(rt), h)
    live.wait_for_mail(1)
    body = live.mailbox.received[0].message.get_body(preferencelist=("plain",))
    assert body is not None
    link = re.search(r"http://localhost:\d+/portal/reset/\S+", str(body.get_content()))
    assert link is not None
    clock = p.Clock(datetime.now(UTC))
    rt.clock = clock
    page.clock.install()

    def advance(seconds: int) -> None:
        clock.advance(seconds=seconds)
        page.clock.fast_forward(seconds * 1000)

    page.goto(link.group(0))
    expect(page.locator("#session-limits")).to_contain_text(
        "a form on this site stops working after 3 minutes without activity"
    )
    page.get_by_label(f.QUESTIONS[0]).fill("Rex")
    dialog = page.get_by_role("dialog")
    advance(59)
    expect(dialog).to_be_hidden()
    advance(2)
    expect(dialog).to_have_accessible_name("This page will time out soon")
    expect(dialog).to_contain_text("This page will stop working in 2 minutes")
    expect(dialog).to_contain_text("Anything you have typed on this page and not yet sent")
    stay = dialog.get_by_role("button", name="Stay on this page")
    expect(stay).to_be_focused()
    expect(dialog.get_by_role("button", name="Sign out")).to_have_count(0)  # nobody signed in
    check_now(page)
    page.keyboard.press("Escape")  # Escape keeps the page too
    expect(dialog).to_be_hidden()
    expect(page.get_by_label(f.QUESTIONS[0])).to_have_value("Rex")
    with rt.db() as s:
        session = s.scalar(select(WebSession).where(WebSession.area == "portal"))
        assert session is not None
        assert session.idle_expires_at == clock.now + timedelta(minutes=3)

    advance(61)
    expect(dialog).to_be_visible()
    advance(120)
    expect(dialog.get_by_role("heading")).to_have_text("This page has timed out")
    expect(dialog).to_contain_text("stopped working after 3 minutes without activity")
    dialog.get_by_role("button", name="Reload the page").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Hello Ann")
    expect(page.get_by_label(f.QUESTIONS[0])).to_have_value("")
