"""Signing in to the vRA Manager with a security key in Chromium: the key first (then the
passcode), and the key as the second factor after email and passcode."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from tests.e2e.browser.conftest import Live
from tests.support import auth as a
from tests.support import factories as f
from tests.support import keys as k
from tests.support import ra_web as w
from tests.support.browser import plug_in_key

from cardvault.services.security_keys import registration as security_key_registration
from cardvault.services.system.runtime import Actor

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CREATE = """async (options) => (await navigator.credentials.create(
    {publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options)})).toJSON()"""


def register_key(page: Page, live: Live, operator: Actor, ra: w.RaUser, *, resident: bool) -> None:
    """An operator registers the RA's key: the page's virtual authenticator makes it."""
    page.goto(f"{live.url}/webauthn/test")
    start = security_key_registration.begin_registration(
        live.rt, operator, serial=ra.holder.card.serial, org_code=ra.org, resident_key=resident
    )
    credential = page.evaluate(CREATE, start.options["publicKey"])
    security_key_registration.complete_registration(
        live.rt, operator, ceremony_id=start.ceremony_id, response=credential, nickname="RA key"
    )


def test_an_ra_signs_in_with_the_key_then_the_passcode(
    page: Page, live: Live, operator: Actor
) -> None:
    a.open_org(live.rt, operator, "ORGA")
    ra = w.ra_user(live.rt, operator, "ORGA", forename="Kira", surname="Keyholder")
    plug_in_key(page)
    register_key(page, live, operator, ra, resident=True)

    page.goto(f"{live.url}/ra")
    page.get_by_role("button", name="Use a security key").click()
    expect(page.get_by_role("heading", name="Your security key was accepted")).to_be_visible()
    page.get_by_label("Passcode").fill(f.STRONG_PASSCODE)
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("group", name=re.compile("Which organisation"))).to_be_visible()
    opened = k.events(live.rt, "session.opened")[-1]
    assert (opened.details["purpose"], opened.details["method"]) == ("ra", "fido2+fido2")
    assert k.events(live.rt, "fido2.sign_in")[-1].details["nickname"] == "RA key"


def test_a_wrong_passcode_after_the_key_is_shown_on_the_passcode_page(
    page: Page, live: Live, operator: Actor
) -> None:
    a.open_org(live.rt, operator, "ORGA")
    ra = w.ra_user(live.rt, operator, "ORGA")
    plug_in_key(page)
    register_key(page, live, operator, ra, resident=True)

    page.goto(f"{live.url}/ra")
    page.get_by_role("button", name="Use a security key").click()
    expect(page.get_by_role("heading", name="Your security key was accepted")).to_be_visible()
    page.get_by_label("Passcode").fill("not the right passcode at all")
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("alert")).to_contain_text("Passcode or identifier not recognised")
    page.get_by_label("Passcode").fill(f.STRONG_PASSCODE)  # the same key answer, once more
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("group", name=re.compile("Which organisation"))).to_be_visible()


def test_an_ra_uses_the_key_instead_of_a_code_after_the_passcode(
    page: Page, live: Live, operator: Actor
) -> None:
    a.open_org(live.rt, operator, "ORGA")
    ra = w.ra_user(live.rt, operator, "ORGA")
    plug_in_key(page)
    register_key(page, live, operator, ra, resident=False)

    page.goto(f"{live.url}/ra")
    page.get_by_label("Email address or Windows account").fill(ra.email)
    page.get_by_label("Passcode").fill(f.STRONG_PASSCODE)
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Use my security key").click()

    expect(page.get_by_role("group", name=re.compile("Which organisation"))).to_be_visible()
    opened = k.events(live.rt, "session.opened")[-1]
    assert opened.details["method"] == "email+fido2"


def test_a_removed_key_on_the_code_page_is_explained(
    page: Page, live: Live, operator: Actor
) -> None:
    a.open_org(live.rt, operator, "ORGA")
    ra = w.ra_user(live.rt, operator, "ORGA")
    key = plug_in_key(page)
    register_key(page, live, operator, ra, resident=False)
    key.remove()
    live.rt.settings.webauthn_timeout_ms = 2000

    page.goto(f"{live.url}/ra")
    page.get_by_label("Email address or Windows account").fill(ra.email)
    page.get_by_label("Passcode").fill(f.STRONG_PASSCODE)
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Use my security key").click()

    expect(page.locator("#key-factor-error")).to_contain_text("security key was not used")
    assert k.events(live.rt, "session.opened") == []
