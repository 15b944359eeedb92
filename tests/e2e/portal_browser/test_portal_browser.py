"""The portal in headless Chromium: the lock email (real SMTP) → reset; invitation; dev outbox."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, expect
from tests.support import auth as a
from tests.support import factories as f
from tests.support import portal as p

from cardvault.crypto.keyslots import open_passcode_slot
from cardvault.notify.outbox import FileOutbox
from cardvault.services.cards.sealing import open_record
from cardvault.services.directory import registry as directory
from cardvault.services.ra import cards as ra_cards
from cardvault.services.ra.actions import RaContext
from cardvault.services.signin.engine import Engine
from cardvault.services.signin.errors import SignInFailed
from cardvault.services.system.runtime import Actor
from cardvault.store.models import Card, Certificate

from .conftest import Live, shot

pytestmark = pytest.mark.browser
NEW = "violet tractor umbrella 1987"


def _text_of(live: Live, index: int) -> str:
    message = live.mailbox.received[index].message
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def test_locked_card_is_reset_from_the_email_link(live: Live, page: Page, operator: Actor) -> None:
    rt = live.rt
    a.open_org(rt, operator)
    h = a.holder(rt, operator, forename="Ann")
    with rt.db() as s:
        certs = sorted(c.fingerprint_sha256 for c in s.query(Certificate).all())
    p.lock(Engine(rt), h)
    live.wait_for_mail(1)
    link = re.search(r"http://localhost:\d+/portal/reset/\S+", _text_of(live, 0))
    assert link is not None

    page.goto(link.group(0))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Hello Ann")
    shot(page, "1-questions")
    page.get_by_label(f.QUESTIONS[0]).fill("Felix")
    page.get_by_label(f.QUESTIONS[1]).fill("Paris")
    page.get_by_role("button", name="Continue").click()
    summary = page.locator(".error-summary")
    expect(summary).to_be_visible()
    expect(summary).to_contain_text("do not match")
    expect(page.get_by_label(f.QUESTIONS[0])).to_have_value("")  # never echoed back
    shot(page, "2-wrong-answers")

    page.get_by_label(f.QUESTIONS[0]).fill("  rex the DOG ")
    page.get_by_label(f.QUESTIONS[2]).fill(f.ANSWERS[2])
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm it is you")
    shot(page, "3-second-factor")
    page.get_by_label("Code from your authenticator app").fill(h.code())
    page.get_by_role("button", name="Continue").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Choose a new passcode")
    page.get_by_label("New passcode", exact=True).fill("password123")
    page.get_by_label("New passcode again").fill("password123")
    page.get_by_role("button", name="Change my passcode").click()
    expect(page.locator(".error-summary")).to_contain_text("too common")
    shot(page, "4-weak-passcode")
    page.get_by_label("New passcode", exact=True).fill(NEW)
    page.get_by_label("New passcode again").fill(NEW)
    page.get_by_role("button", name="Change my passcode").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your passcode has been changed")
    shot(page, "5-done")

    with pytest.raises(SignInFailed):
        a.login(Engine(rt), h)  # the old passcode no longer works
    assert a.login(Engine(rt), h, passcode=NEW, code=h.code(time.time() + 30)).session
    with rt.db() as s:
        card = s.get(Card, h.card.card_id)
        assert card is not None
        open_passcode_slot(open_record(rt.master_key, card), NEW)
        assert sorted(c.fingerprint_sha256 for c in s.query(Certificate).all()) == certs
    live.wait_for_mail(2)  # the confirmation
    assert "passcode was changed" in str(live.mailbox.received[1].message["Subject"])

    page.goto(link.group(0))  # the link worked once
    expect(page.get_by_role("heading", level=1)).to_have_text("This link cannot be used")
    expect(page.locator("main")).to_contain_text("already been used")


def test_invitation_is_completed_in_the_browser(live: Live, page: Page, operator: Actor) -> None:
    rt = live.rt
    f.org(rt, operator)
    card = f.issued_card(rt, operator)
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
        email="invitee@example.org",
        phone="07700 900123",
    )
    live.wait_for_mail(1)
    link = re.search(r"http://localhost:\d+/portal/invitation/\S+", _text_of(live, 0))
    assert link is not None
    deadline = time.monotonic() + 15
    while not (sms := FileOutbox(rt.settings.outbox_dir).list_messages()):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    code = re.search(r"\b\d{6}\b", sms[0].summary)
    assert code is not None

    page.goto(link.group(0))
    shot(page, "6-invitation-code")
    page.get_by_label("Code from the text message").fill(code.group(0))
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Choose your passcode")
    page.get_by_label("Passcode", exact=True).fill(NEW)
    page.get_by_label("Passcode again").fill(NEW)
    for n, answer in enumerate(("Rex", "Leeds", "Sparky"), start=1):
        group = page.get_by_role("group", name=f"Question {n}")
        group.get_by_label("Answer", exact=True).fill(answer)
    page.get_by_label("Card PIN", exact=True).fill("27182818")
    page.get_by_label("Card PIN again").fill("27182818")
    page.get_by_label("Also give me a recovery code").check()
    shot(page, "7-invitation-setup")
    page.get_by_role("button", name="Finish setting up my card").click()
    # the card is ready once it has a second factor (test_my_card_browser.py goes on)
    expect(page.get_by_role("heading", level=1)).to_contain_text("One more step")
    expect(page.locator("#recovery-code")).to_have_text(
        re.compile(r"^[A-Z2-7]{4}(-[A-Z2-7]{4}){7}$")
    )
    shot(page, "8-invitation-done")
    with rt.db() as s:
        row = s.get(Card, card.card_id)
        assert row is not None
        assert row.status == "active"


@pytest.mark.parametrize("live", ["outbox"], indirect=True)
def test_a_newcomer_follows_the_link_from_the_development_outbox(
    live: Live, page: Page, operator: Actor
) -> None:
    rt = live.rt
    a.open_org(rt, operator)
    h = a.holder(rt, operator, forename="Ann")
    page.goto(f"{live.url}/portal")
    shot(page, "0-start")
    page.get_by_label("Email address or user ID").fill(h.email)
    page.get_by_role("button", name="Send me a link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")
    shot(page, "0-sent")
    page.get_by_role("link", name="development outbox").click()
    email = page.get_by_role("link", name=re.compile("Reset your"))
    deadline = time.monotonic() + 15
    while not email.count():
        assert time.monotonic() < deadline, "the email did not reach the outbox"
        page.reload()
    email.click()
    shot(page, "9-outbox-message")
    page.locator("main a[href*='/portal/reset/']").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Hello Ann")
