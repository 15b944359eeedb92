"""The holder looks after their own card in headless Chromium: an invitation that ends with
a paired phone (then the agent signs in) or a security key, and My card end to end."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect
from tests.support import auth as a
from tests.support import factories as f
from tests.support import phones, qr
from tests.support.browser import plug_in_key

from cardvault.clients.agent import core
from cardvault.clients.common.api import CardvaultApi
from cardvault.crypto import device as dcrypto
from cardvault.services.devices import pairing
from cardvault.services.directory import registry as directory
from cardvault.services.ra import cards as ra_cards
from cardvault.services.ra.actions import RaContext
from cardvault.services.system.runtime import Actor

from .conftest import Live, shot

pytestmark = pytest.mark.browser
NEW = "violet tractor umbrella 1987"
OTHER = "marble kettle horizon 2024"


def _invitation_link(live: Live, operator: Actor) -> tuple[str, str]:
    """An RA's invitation: the link from the email (real SMTP) and the code from the SMS."""
    rt = live.rt
    f.org(rt, operator, networks=a.LOOPBACK)
    card = f.issued_card(rt, operator, forename="Ivy")
    with rt.db() as s:
        org_id = directory.get_org(s, "ORG1").id
    ctx = RaContext(
        actor=operator, organisation_id=org_id, organisation_code="ORG1", role="ra_agent"
    )
    ra_cards.invite(
        rt,
        ctx,
        card.user_id,
        issuance_passcode=f.ISSUANCE_PASSCODE,
        email="ivy@example.org",
        phone="07700 900123",
    )
    live.wait_for_mail(1)
    body = live.mailbox.received[0].message.get_body(preferencelist=("plain",))
    assert body is not None
    link = re.search(r"http://localhost:\d+/portal/invitation/\S+", str(body.get_content()))
    assert link is not None
    from cardvault.notify.outbox import FileOutbox

    deadline = time.monotonic() + 15
    while not (sms := FileOutbox(rt.settings.outbox_dir).list_messages()):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    code = re.search(r"\b\d{6}\b", sms[0].summary)
    assert code is not None
    return link.group(0), code.group(0)


def _finish_passcode_step(page: Page, link: str, code: str) -> None:
    page.goto(link)
    page.get_by_label("Code from the text message").fill(code)
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Passcode", exact=True).fill(NEW)
    page.get_by_label("Passcode again").fill(NEW)
    for n, answer in enumerate(("Rex", "Leeds", "Sparky"), start=1):
        page.get_by_role("group", name=f"Question {n}").get_by_label("Answer", exact=True).fill(
            answer
        )
    page.get_by_role("button", name="Finish setting up my card").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("One more step")


def test_invitation_pairs_the_phone_and_the_agent_signs_in(
    live: Live, page: Page, operator: Actor, tmp_path: Path
) -> None:
    link, code = _invitation_link(live, operator)
    _finish_passcode_step(page, link, code)
    shot(page, "9-invitation-second-factor", doc="invitation-second-factor")
    page.get_by_role("button", name="I have paired my phone — continue").click()
    expect(page.get_by_role("alert", name="There is a problem")).to_contain_text(
        "no phone or security key yet"
    )
    page.get_by_role("button", name="Show a pairing code").click()
    expect(page.locator("img.qr")).to_be_visible()
    shot(page, "10-invitation-pairing-qr", doc="invitation-pairing-qr")
    # the phone scans the QR code and the holder types the new passcode in the app
    uri = qr.read_page_qr(page.content(), tmp_path)
    key = dcrypto.DeviceKey.generate()
    paired = pairing.pair(
        live.rt, a.client(), phones.pair_request(phones.pairing_token(uri), key, NEW)
    )
    phone = phones.Phone(key, paired.device_id, paired.totp_secret)
    page.get_by_role("button", name="I have paired my phone — continue").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Your card is ready")
    shot(page, "11-invitation-ready", doc="invitation-ready")
    # right after the invitation, the identity agent signs in with the card
    with httpx.Client(base_url=live.url, timeout=30) as http:
        state = core.login(
            CardvaultApi(http),
            live.url,
            core.LoginInput(identifier_kind="email", identifier="ivy@example.org", passcode=NEW),
            totp=phone.code(),
            ask_code=lambda _: "",
        )
        assert core.status(CardvaultApi(http), state).text("status") == "active"


def test_invitation_registers_a_security_key(live: Live, page: Page, operator: Actor) -> None:
    link, code = _invitation_link(live, operator)
    key = plug_in_key(page)
    _finish_passcode_step(page, link, code)
    page.get_by_role("button", name="Register my security key").click()
    expect(page.locator("#fido2-error")).to_be_visible()
    expect(page.locator("#fido2-error-text")).to_contain_text("Give the key a name")
    page.get_by_label("Name for this key").fill("Blue key")
    page.get_by_role("button", name="Register my security key").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Your card is ready")
    assert len(key.credentials()) == 1


def _sign_in(page: Page, live: Live, h: a.HolderFixture) -> None:
    page.goto(f"{live.url}/portal/card")
    shot(page, "12-my-card-sign-in", doc="my-card-sign-in")
    page.get_by_label("Email address or Windows account (DOMAIN\\name)").fill(h.email)
    page.get_by_label("Passcode", exact=True).fill("not my passcode at all")
    page.get_by_role("button", name="Continue").click()
    expect(page.locator(".error-summary")).to_be_visible()
    page.get_by_label("Passcode", exact=True).fill(f.STRONG_PASSCODE)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your second factor")
    page.get_by_label("Enter the code from your authenticator app").fill(h.code())
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My card")


def test_my_card_end_to_end(live: Live, page: Page, operator: Actor) -> None:
    rt = live.rt
    a.open_org(rt, operator)
    h = a.holder(rt, operator, forename="Ann")
    _sign_in(page, live, h)
    shot(page, "13-my-card", doc="my-card")

    page.get_by_role("link", name="Change your passcode").click()
    page.get_by_label("Current passcode").fill(f.STRONG_PASSCODE)
    page.get_by_label("New passcode", exact=True).fill("password123")
    page.get_by_label("New passcode again").fill("password123")
    page.get_by_role("button", name="Change my passcode").click()
    expect(page.locator(".error-summary")).to_contain_text("too common")
    shot(page, "14-my-card-passcode-error", doc="my-card-passcode")
    page.get_by_label("Current passcode").fill(f.STRONG_PASSCODE)
    page.get_by_label("New passcode", exact=True).fill(OTHER)
    page.get_by_label("New passcode again").fill(OTHER)
    page.get_by_role("button", name="Change my passcode").click()
    expect(page.locator("main")).to_contain_text("Your passcode has been changed")

    page.get_by_role("link", name="Change your security questions").click()
    for n, answer in enumerate(("Felix", "York", "Sparky"), start=1):
        page.get_by_role("group", name=f"Question {n}").get_by_label("Answer", exact=True).fill(
            answer
        )
    page.get_by_label("Your current passcode").fill(OTHER)
    page.get_by_role("button", name="Save my security questions").click()
    expect(page.locator("main")).to_contain_text("security questions and answers have been changed")

    page.get_by_role("link", name="Get a recovery code").click()
    page.get_by_label("Your current passcode").fill(OTHER)
    page.get_by_role("button", name="Make a new recovery code").click()
    expect(page.locator("#recovery-code")).to_have_text(
        re.compile(r"^[A-Z2-7]{4}(-[A-Z2-7]{4}){7}$")
    )
    page.get_by_role("link", name="Back to My card").click()

    page.get_by_role("link", name=re.compile("^Remove")).click()
    page.get_by_role("button", name="Remove it").click()
    expect(page.locator(".error-summary")).to_contain_text("Tick the box")
    shot(page, "15-my-card-remove", doc="my-card-remove")
    page.get_by_role("checkbox").check()
    page.get_by_label("Your current passcode").fill(OTHER)
    page.get_by_role("button", name="Remove it").click()
    expect(page.locator("main")).to_contain_text("Your Registration Authority has been told")

    page.get_by_role("link", name="See the last 90 days").click()
    expect(page.locator("main")).to_contain_text(
        "Signed in from 127.0.0.1 with an authenticator code"
    )
    expect(page.locator("main")).to_contain_text("Passcode changed by the holder")
    shot(page, "16-my-card-activity", doc="my-card-activity")
    page.get_by_role("link", name="Back to My card").click()
    page.get_by_role("button", name="Sign out").last.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to My card")
    live.wait_for_mail(3)  # passcode, questions, recovery code (the organisation has no RA)
    subjects = [str(m.message["Subject"]) for m in live.mailbox.received]
    assert any("passcode was changed" in s for s in subjects)
    assert sum("card was changed" in s for s in subjects) == 2


def test_a_security_key_added_on_my_card_signs_in_next_time(
    live: Live, page: Page, operator: Actor
) -> None:
    rt = live.rt
    a.open_org(rt, operator)
    h = a.holder(rt, operator, forename="Kit")
    key = plug_in_key(page)
    _sign_in(page, live, h)
    page.get_by_role("link", name="Register a security key").click()
    page.get_by_label("Name for this key").fill("Green key")
    page.get_by_role("button", name="Register my security key").click()
    expect(page.locator("main")).to_contain_text("Security key 'Green key' registered.")
    expect(page.locator("main")).to_contain_text("Green key")
    assert len(key.credentials()) == 1
    page.get_by_role("button", name="Sign out").last.click()
    # next time: the passcode, then the key instead of a code
    page.get_by_label("Email address or Windows account (DOMAIN\\name)").fill(h.email)
    page.get_by_label("Passcode", exact=True).fill(f.STRONG_PASSCODE)
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Use my security key").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My card")
