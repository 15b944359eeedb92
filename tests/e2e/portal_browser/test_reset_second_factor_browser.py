"""Resetting a locked card in headless Chromium with the second factors beyond a code: a FIDO2
security key (Chromium's virtual authenticator) and a push that the project's own
authenticator client, paired with the service over HTTP, approves or denies as the phone.

Each starts like the holder's morning: three wrong passcodes lock the card, the lock email
arrives over SMTP, and its link opens the portal."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select
from tests.support import auth as a
from tests.support import factories as f
from tests.support import keys as k
from tests.support import portal as p
from tests.support.app_phone import Phone, paired
from tests.support.browser import VirtualKey, plug_in_key

from cardvault.clients.authenticator import core
from cardvault.services.directory import registry as directory
from cardvault.services.recovery import reset as recovery
from cardvault.services.recovery.errors import LinkInvalid
from cardvault.services.security_keys import registration as security_key_registration
from cardvault.services.signin.engine import Engine, LoginRequest
from cardvault.services.signin.errors import SignInFailed
from cardvault.services.signin.factors import FactorAnswer
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import AuditEvent

from .conftest import Live, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]
NEW = "violet tractor umbrella 1987"
CREATE = """async (options) => (await navigator.credentials.create(
    {publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options)})).toJSON()"""
GET = """async (options) => (await navigator.credentials.get(
    {publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options)})).toJSON()"""


def _login(rt: Runtime, email: str, passcode: str) -> Any:
    return Engine(rt).login(
        a.client(), LoginRequest(identifier_kind="email", identifier=email, passcode=passcode)
    )


def _lock_and_follow_the_email(live: Live, page: Page, email: str) -> str:
    """Three wrong passcodes; open the link of the lock email (real SMTP). The token."""
    p.lock_by_email(Engine(live.rt), email)
    deadline = time.monotonic() + 15
    while not (links := [m for m in map(_link_in, live.mailbox.received) if m]):
        assert time.monotonic() < deadline, "the lock email did not arrive"
        time.sleep(0.05)
    page.goto(links[0])
    return p.token_in(links[0])


def _link_in(received: Any) -> str | None:
    """The reset link of an email (the lock email; others, such as "a key was added", have
    none)."""
    body = received.message.get_body(preferencelist=("plain",))
    found = re.search(r"http://localhost:\d+/portal/reset/\S+", str(body.get_content()))
    return found.group(0) if found else None


def _answer_the_questions(page: Page) -> None:
    page.get_by_label(f.QUESTIONS[0]).fill(f.ANSWERS[0])
    page.get_by_label(f.QUESTIONS[2]).fill(f.ANSWERS[2])
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm it is you")


def _choose_the_new_passcode(page: Page) -> None:
    expect(page.get_by_role("heading", level=1)).to_have_text("Choose a new passcode")
    page.get_by_label("New passcode", exact=True).fill(NEW)
    page.get_by_label("New passcode again").fill(NEW)
    page.get_by_role("button", name="Change my passcode").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your passcode has been changed")


# --- the security key ---------------------------------------------------------------------


def _pin_entered(key: VirtualKey, entered: bool) -> None:
    key.cdp.send(
        "WebAuthn.setUserVerified",
        {"authenticatorId": key.authenticator_id, "isUserVerified": entered},
    )


def test_a_locked_card_is_reset_with_the_security_key(
    live: Live, page: Page, operator: Actor
) -> None:
    rt = live.rt
    a.open_org(rt, operator)
    card = f.active_card(rt, operator, forename="Kim", email="kim@example.org")
    key = plug_in_key(page)  # a USB key with a PIN; the organisation requires it
    page.goto(f"{live.url}/webauthn/test")  # the RA registers it (any page of the origin)
    start = security_key_registration.begin_registration(
        rt, operator, serial=card.serial, org_code="ORG1"
    )
    security_key_registration.complete_registration(
        rt,
        operator,
        ceremony_id=start.ceremony_id,
        response=page.evaluate(CREATE, start.options["publicKey"]),
        nickname="Kim's key",
    )

    token = _lock_and_follow_the_email(live, page, "kim@example.org")
    _answer_the_questions(page)
    expect(page.get_by_role("button", name="Send a request to my phone")).to_have_count(0)
    shot(page, "10-security-key")
    _pin_entered(key, False)  # the holder does not enter the key's PIN: the browser refuses
    page.get_by_role("button", name="Use my security key").click()
    expect(page.locator("#key-error")).to_contain_text("security key was not used")
    expect(page.locator("#key-error")).to_be_focused()
    shot(page, "11-security-key-cancelled")
    assert recovery.open_reset(rt, token).tries_left == recovery.LINK_MAX_FAILURES  # no try

    _pin_entered(key, True)
    page.get_by_role("button", name="Use my security key").click()
    _choose_the_new_passcode(page)

    with pytest.raises(SignInFailed):
        _login(rt, "kim@example.org", f.STRONG_PASSCODE)  # the old passcode
    started = _login(rt, "kim@example.org", NEW)  # the new one, then the key
    offer = k.offer(started)
    assertion = page.evaluate(GET, offer["publicKey"])
    grant = Engine(rt).complete_factor(
        a.client(), started.transaction_id, FactorAnswer(method="fido2", credential=assertion)
    )
    assert grant.card_serial == card.serial
    assert key.credentials()[0]["signCount"] == 3  # registration, reset, sign-in


def _register(rt: Runtime, operator: Actor, page: Page, serial: str, org: str, name: str) -> None:
    """The RA of ``org`` registers the key plugged into the page (any page of the origin)."""
    start = security_key_registration.begin_registration(rt, operator, serial=serial, org_code=org)
    security_key_registration.complete_registration(
        rt,
        operator,
        ceremony_id=start.ceremony_id,
        response=page.evaluate(CREATE, start.options["publicKey"]),
        nickname=name,
    )


def test_a_holder_of_two_organisations_resets_with_the_key_of_the_second(
    live: Live, page: Page, operator: Actor
) -> None:
    """Issue 21: the reset asks for the keys of both organisations at once, and the key
    registered in the second one (the only key at hand) is accepted there."""
    rt = live.rt
    a.open_org(rt, operator, "ORG1")
    a.open_org(rt, operator, "ORG2")
    card = f.active_card(rt, operator, forename="Sam", email="sam@example.org")
    directory.add_membership(rt, operator, card.user_id, "ORG2")
    page.goto(f"{live.url}/webauthn/test")
    ward_key = plug_in_key(page)
    _register(rt, operator, page, card.serial, "ORG1", "Ward key")
    ward_key.remove()  # left at the first hospital
    clinic_key = plug_in_key(page)
    _register(rt, operator, page, card.serial, "ORG2", "Clinic key")

    token = _lock_and_follow_the_email(live, page, "sam@example.org")
    _answer_the_questions(page)
    shot(page, "14-two-organisations-security-key")
    page.get_by_role("button", name="Use my security key").click()
    _choose_the_new_passcode(page)

    confirmed = [e for e in _card_events(rt, card.card_id) if e[0] == "recovery.second_factor"]
    assert confirmed[-1][1:4] == ("success", "ORG2", "Clinic key")
    assert confirmed[-1][4] == clinic_key.credentials()[0]["signCount"]  # this key answered
    with pytest.raises(LinkInvalid, match="already been used"):
        recovery.open_reset(rt, token)


def _card_events(rt: Runtime, card_id: str) -> list[tuple[object, ...]]:
    with rt.db() as s:
        return [
            (
                e.action,
                e.outcome,
                e.details.get("key_organisation"),
                e.details.get("nickname"),
                e.details.get("sign_count"),
            )
            for e in s.scalars(
                select(AuditEvent)
                .where(AuditEvent.card_id == card_id)
                .order_by(AuditEvent.occurred_at, AuditEvent.seq)
            )
        ]


# --- push to the paired phone -----------------------------------------------------------


@pytest.fixture
def phone(live: Live, operator: Actor) -> Iterator[Phone]:
    """Pat's card (no other second factor) with a phone paired, as the app pairs."""
    rt = live.rt
    a.open_org(rt, operator)
    card = f.active_card(rt, operator, forename="Pat", email="pat@example.org")
    with paired(
        live.url, rt, operator, serial=card.serial, org_code="ORG1", name="Pat's phone"
    ) as phone:
        yield phone


def test_a_locked_card_is_reset_with_a_push_the_phone_approves(
    live: Live, page: Page, phone: Phone
) -> None:
    rt = live.rt
    _lock_and_follow_the_email(live, page, "pat@example.org")
    _answer_the_questions(page)
    expect(page.get_by_role("button", name="Use my security key")).to_have_count(0)
    phone.listen()  # the app is open (the card is locked: it still gets this reset's push)

    page.get_by_role("button", name="Send a request to my phone").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Approve the request on your phone")
    number = page.locator("#push-number").inner_text()
    assert re.fullmatch(r"\d\d", number)
    expect(page.locator("#push-status")).to_have_text("Waiting for your phone…")
    shot(page, "12-push-number")
    shown = phone.wait_until_said("Reset your passcode")
    assert "Self-service portal: passcode reset" in shown  # where the request comes from
    phone.choices.put(core.Choice(decision="approve", number=number))  # typed on the phone

    _choose_the_new_passcode(page)  # the page's script saw the approval and went on

    phone.finish()
    assert any("Answered approve: approved" in s for s in phone.said)
    started = _login(rt, "pat@example.org", NEW)
    grant = Engine(rt).complete_factor(
        a.client(),
        started.transaction_id,
        FactorAnswer(method="authenticator", code=core.totp_code(phone.state)),
    )
    assert grant.card_serial == phone.state.card_serial


def test_a_denied_push_is_explained_in_a_browser_without_javascript(
    live: Live, browser: Browser, phone: Phone
) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(15000)
    try:
        token = _lock_and_follow_the_email(live, page, "pat@example.org")
        _answer_the_questions(page)
        expect(page.get_by_role("button", name="Use my security key")).to_have_count(0)
        phone.listen()
        page.get_by_role("button", name="Send a request to my phone").click()
        continue_button = page.get_by_role("button", name="I have approved it — continue")
        continue_button.click()  # too early: nothing is counted
        expect(page.locator(".error-summary")).to_contain_text("has not answered")
        assert recovery.open_reset(live.rt, token).tries_left == recovery.LINK_MAX_FAILURES

        phone.wait_until_said("Reset your passcode")
        phone.choices.put(core.Choice(decision="deny"))
        phone.finish()
        page.get_by_role("button", name="I have approved it — continue").click()

        summary = page.locator(".error-summary")
        expect(summary).to_contain_text("denied on the phone. 2 tries left with this link.")
        expect(page.get_by_role("heading", level=1)).to_have_text("Confirm it is you")
        shot(page, "13-push-denied")
        assert recovery.open_reset(live.rt, token).tries_left == recovery.LINK_MAX_FAILURES - 1
    finally:
        context.close()


@pytest.fixture(autouse=True)
def _keys_here(live: Live) -> None:
    live.rt.settings.webauthn_timeout_ms = 5000  # a refused key answers at once; never hang
