"""Signing in to the vRA Manager in headless Chromium with a push to the paired phone: the
project's own authenticator client, paired over HTTP, approves it with the number the page
shows, and the page's script continues by itself."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect
from tests.e2e.browser.conftest import Live
from tests.support import auth as a
from tests.support import factories as f
from tests.support.app_phone import Phone, paired

from cardvault.clients.authenticator import core
from cardvault.services.directory import registry as directory
from cardvault.services.system.runtime import Actor

pytestmark = [pytest.mark.browser, pytest.mark.slow]
EMAIL = "petra.phone@example.org"


@pytest.fixture
def phone(live: Live, operator: Actor) -> Iterator[Phone]:
    """An RA whose only second factor is a phone, paired as the app pairs."""
    rt = live.rt
    a.open_org(rt, operator, "ORGA")
    card = f.active_card(rt, operator, "ORGA", forename="Petra", email=EMAIL)
    directory.grant_role(rt, operator, user_id=card.user_id, org_code="ORGA", role="ra_manager")
    with paired(
        live.url, rt, operator, serial=card.serial, org_code="ORGA", name="Petra's phone"
    ) as phone:
        yield phone


def test_an_ra_signs_in_with_a_push_the_phone_approves(
    page: Page, live: Live, phone: Phone
) -> None:
    phone.listen()
    page.goto(f"{live.url}/ra")
    page.get_by_label("Email address or Windows account").fill(EMAIL)
    page.get_by_label("Passcode").fill(f.STRONG_PASSCODE)
    page.get_by_role("button", name="Continue").click()

    page.get_by_role("button", name="Send a request to my phone").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Approve the request on your phone")
    number = page.locator("#push-number").inner_text()
    assert re.fullmatch(r"\d\d", number)
    expect(page.locator("#push-status")).to_have_text("Waiting for your phone…")
    shown = phone.wait_until_said("Sign-in request")
    assert "vRA Manager" in shown  # where the request comes from
    phone.choices.put(core.Choice(decision="approve", number=number))  # typed on the phone

    expect(page.get_by_role("group", name=re.compile("Which organisation"))).to_be_visible()
    phone.finish()
    assert any("Answered approve: approved" in s for s in phone.said)
