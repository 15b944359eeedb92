"""The vRA Manager in headless Chromium: what an RA does, with the keyboard and a real browser."""

from __future__ import annotations

import csv
import io
import re
import time

import pyotp
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select
from tests.e2e.browser.conftest import Live, shot, sign_in
from tests.support import auth as a
from tests.support import factories as f
from tests.support import ra_web as w

from cardvault.services.system.runtime import Actor
from cardvault.store.models import Association, Card, Link

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _card(live: Live, serial: str) -> Card:
    with live.rt.db() as s:
        card = s.scalar(select(Card).where(Card.serial == serial))
        assert card is not None
        return card


def test_ra_journey(page: Page, live: Live, operator: Actor) -> None:
    rt = live.rt
    a.open_org(rt, operator, "ORGA")
    ra = w.ra_user(rt, operator, "ORGA", forename="Rana", surname="Admin")
    bob = f.issued_card(rt, operator, "ORGA", forename="Bob", surname="Newcomer")
    sign_in(page, live, ra, screenshots=True)
    cookie = next(c for c in page.context.cookies() if c["name"] == "__Host-cardvault-ra")
    assert cookie["secure"]
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Strict"

    # find
    page.get_by_label("Name, email address, user id or card serial").fill("newcomer")
    page.keyboard.press("Enter")
    expect(page.get_by_role("link", name="Bob Newcomer")).to_be_visible()
    shot(page, "03-find")
    page.get_by_role("link", name="Bob Newcomer").click()
    expect(page.get_by_role("heading", name="Bob Newcomer")).to_be_visible()

    # enrol: weak passcode first, then strong
    page.get_by_role("link", name="Enrol the holder").click()
    page.get_by_label("Email address").fill("bob@example.org")
    page.get_by_label("Issuance passcode").fill(f.ISSUANCE_PASSCODE)
    page.get_by_label("Choose a passcode").fill("password1")
    page.get_by_label("Type the passcode again").fill("password1")
    for n, (q, ans) in enumerate(zip(f.QUESTIONS, f.ANSWERS, strict=True), start=1):
        group = page.get_by_role("group", name=f"Security question {n}")
        group.get_by_label("Question", exact=True).select_option("__own__")
        group.get_by_label("Your own question").fill(q)
        group.get_by_label("Answer", exact=True).fill(ans)
    page.get_by_role("button", name="Enrol").click()
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("There is a problem")
    expect(summary).to_be_focused()
    expect(summary.get_by_role("link", name=re.compile("too common"))).to_be_visible()
    expect(page.get_by_label("Choose a passcode")).to_have_value("")
    expect(page.get_by_label("Email address")).to_have_value("bob@example.org")
    shot(page, "04-enrol-error-summary")
    summary.get_by_role("link", name=re.compile("too common")).click()
    expect(page.get_by_label("Choose a passcode")).to_be_focused()
    page.get_by_label("Issuance passcode").fill(f.ISSUANCE_PASSCODE)
    page.get_by_label("Choose a passcode").fill(f.STRONG_PASSCODE)
    page.get_by_label("Type the passcode again").fill(f.STRONG_PASSCODE)
    for n, ans in enumerate(f.ANSWERS, start=1):
        page.get_by_role("group", name=f"Security question {n}").get_by_label(
            "Answer", exact=True
        ).fill(ans)
    page.get_by_role("button", name="Enrol").click()
    expect(page.get_by_role("status")).to_contain_text("enrolled and active")
    assert _card(live, bob.serial).status == "active"

    # authenticator app (TOTP), confirmed with a code computed independently
    page.get_by_role("link", name="Add an authenticator app (codes)").click()
    page.get_by_label("Name for this authenticator (optional)").fill("Work phone")
    page.get_by_role("button", name="Show the QR code").click()
    expect(page.get_by_role("img", name=re.compile("QR code"))).to_be_visible()
    key = page.locator("#totp-key").inner_text().replace(" ", "")
    shot(page, "05-authenticator-qr")
    page.get_by_label("Code shown in the app").fill(pyotp.TOTP(key).now())
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("status")).to_contain_text("confirmed")

    # HR card: a keyboard-wedge reader types the UID and Enter into the focused field
    page.get_by_role("link", name="Associate an HR card").click()
    expect(page.get_by_label("Card number (UID)")).to_be_focused()
    page.keyboard.type("04a22b1ac35e80")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("HR card 04A22B1AC35E80 associated")

    # FIDO2 key through Chromium's virtual authenticator
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "usb",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    page.get_by_role("link", name="Register a security key").click()
    shot(page, "06-fido2")
    page.get_by_label("Name for this key").fill("Blue key")
    page.get_by_role("button", name="Register the key").click()
    expect(page.get_by_role("status").first).to_contain_text("Security key 'Blue key' registered")
    # attestation "none": the browser zeroes the AAGUID, and the page says so
    expect(page.get_by_role("cell", name=re.compile("^Blue key"))).to_contain_text(
        "Unidentified authenticator (no AAGUID)"
    )
    shot(page, "07-person")
    with rt.db() as s:
        kinds = sorted(
            x.method
            for x in s.scalars(select(Association).where(Association.card_id == bob.card_id))
        )
        assert kinds == ["fido2", "hr_card", "totp"]

    # lock, unlock, revoke: each with a reason
    for action, title, status in (
        ("Lock", "Lock the card", "locked"),
        ("Unlock", "Unlock the card", "active"),
        ("Revoke", "Revoke the card", "revoked"),
    ):
        page.get_by_role("link", name=action, exact=True).click()
        page.get_by_label("Reason").fill(f"{action} because of a test")
        if action == "Revoke":
            shot(page, "08-revoke")
        page.get_by_role("button", name=title).click()
        expect(page.get_by_role("heading", name="Bob Newcomer")).to_be_visible()
        assert _card(live, bob.serial).status == status

    # audit log, filtered, and its CSV export
    page.get_by_role("link", name="Audit log").click()
    page.get_by_label("Card serial").fill(bob.serial)
    page.get_by_label("Action").fill("card.")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("cell", name="Revoke because of a test")).to_be_visible()
    expect(page.get_by_role("cell", name="auth.passcode")).to_have_count(0)
    shot(page, "09-audit")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download as CSV").click()
    rows = list(csv.DictReader(io.StringIO(download.value.path().read_text())))
    assert {r["action"] for r in rows} >= {"card.locked", "card.unlocked", "card.revoked"}
    assert {r["reason"] for r in rows} >= {"Lock because of a test", "Revoke because of a test"}


def test_cross_organisation_denial(page: Page, live: Live, operator: Actor) -> None:
    rt = live.rt
    a.open_org(rt, operator, "ORGA")
    a.open_org(rt, operator, "ORGB")
    victim = f.active_card(rt, operator, "ORGA", forename="Victor", surname="Victim")
    ra_b = w.ra_user(rt, operator, "ORGB", forename="Brenda")
    sign_in(page, live, ra_b)
    page.get_by_label("Name, email address, user id or card serial").fill(victim.user_id)
    page.keyboard.press("Enter")
    expect(page.get_by_text("No person in ORGB matches")).to_be_visible()
    response = page.goto(f"{live.url}/ra/persons/{victim.user_id}")
    assert response is not None
    assert response.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    shot(page, "10-other-organisation-404")
    page.goto(f"{live.url}/ra/persons/{victim.user_id}/card/revoke")
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    assert _card(live, victim.serial).status == "active"
    time.sleep(0)


def test_a_refused_security_key_ceremony_is_explained(
    page: Page, live: Live, operator: Actor
) -> None:
    rt = live.rt
    a.open_org(rt, operator, "ORGA")
    ra = w.ra_user(rt, operator, "ORGA")
    holder = f.active_card(rt, operator, "ORGA", forename="Fay")
    sign_in(page, live, ra)
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    # the organisation requires user verification; this key cannot do it: the browser refuses
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "usb",
                "hasResidentKey": True,
                "hasUserVerification": False,
                "automaticPresenceSimulation": True,
            }
        },
    )
    page.goto(f"{live.url}/ra/persons/{holder.user_id}/methods/fido2")
    page.get_by_role("button", name="Register the key").click()
    expect(page.get_by_role("alert")).to_contain_text("Give the key a name")
    page.get_by_label("Name for this key").fill("Grey key")
    page.get_by_role("button", name="Register the key").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("cancelled or timed out")
    expect(alert).to_be_focused()
    with rt.db() as s:
        assert s.scalar(select(Association).where(Association.method == "fido2")) is None


def test_pairing_codes_come_from_the_button_not_from_opening_the_page(
    page: Page, live: Live, operator: Actor
) -> None:
    rt = live.rt
    a.open_org(rt, operator, "ORGA")
    ra = w.ra_user(rt, operator, "ORGA")
    holder = f.active_card(rt, operator, "ORGA", forename="Pat", surname="Phone")

    def codes() -> list[Link]:
        with rt.db() as s:
            return list(s.scalars(select(Link).where(Link.card_id == holder.card_id)))

    sign_in(page, live, ra)
    page.goto(f"{live.url}/ra/persons/{holder.user_id}")
    page.get_by_role("link", name="Pair the mobile identity agent").click()
    expect(page.get_by_role("heading", name="Pair the mobile identity agent")).to_be_visible()
    page.reload()
    expect(page.get_by_role("img", name=re.compile("QR code"))).to_have_count(0)
    assert codes() == []
    page.get_by_role("button", name="Show a pairing code").click()
    expect(page.get_by_role("img", name=re.compile("QR code"))).to_be_visible()
    expect(page.get_by_text("The code expires at")).to_be_visible()
    assert len(codes()) == 1
    page.go_back()
    expect(page.get_by_role("button", name="Show a pairing code")).to_be_visible()
    assert len(codes()) == 1
    for button in ("Show a pairing code", "Show a new pairing code"):
        with page.expect_response(lambda r: r.request.method == "POST") as answer:
            page.get_by_role("button", name=button).click()
        assert answer.value.status == 200
    expect(page.get_by_role("img", name=re.compile("QR code"))).to_be_visible()
    assert sorted(link.revoked_at is None for link in codes()) == [False, False, True]
