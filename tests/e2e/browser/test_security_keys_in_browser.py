"""Security keys in Chromium: an RA registers a holder's key on the /webauthn/test page,
the holder signs in with it (key first, or email and passcode first), with and without
user verification, with the key removed, and with a model the policy does not allow."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page
from sqlalchemy import select
from tests.support import auth as a
from tests.support import factories as f
from tests.support import keys as k
from tests.support.browser import plug_in_key
from tests.support.live_server import serve_runtime

from cardvault.domain.webauthn import WELL_KNOWN_AAGUIDS
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import Association

pytestmark = pytest.mark.browser
CHROMIUM_AAGUID = next(g for g, n in WELL_KNOWN_AAGUIDS.items() if n.startswith("Chromium"))
YUBIKEY = "cb69481e-8ff7-4039-93ec-0a2729a154a8"


@pytest.fixture
def url(rt: Runtime) -> Iterator[str]:
    with serve_runtime(rt, webauthn_timeout_ms=3000) as base:
        yield base


def result(page: Page, box: str) -> tuple[str, dict[str, Any]]:
    page.wait_for_selector(f"#{box}[data-status=ok], #{box}[data-status=error]")
    element = page.locator(f"#{box}")
    return str(element.get_attribute("data-status")), json.loads(element.text_content() or "{}")


def register(
    page: Page, token: str, serial: str, *, nickname: str = "Browser key", resident: bool = True
) -> tuple[str, dict[str, Any]]:
    page.fill("#register-token", token)
    page.fill("#register-serial", serial)
    page.fill("#register-nickname", nickname)
    if resident:
        page.check("#register-resident")
    page.click("#register-button")
    return result(page, "register-result")


def sign_in_with_key(
    page: Page, *, passcode: str = f.STRONG_PASSCODE, organisation: str = ""
) -> tuple[str, dict[str, Any]]:
    page.fill("#signin-key-organisation", organisation)
    page.fill("#signin-key-passcode", passcode)
    page.click("#signin-key-button")
    return result(page, "signin-key-result")


def sign_in_with_email(page: Page, email: str) -> tuple[str, dict[str, Any]]:
    page.fill("#signin-email", email)
    page.fill("#signin-email-passcode", f.STRONG_PASSCODE)
    page.click("#signin-email-button")
    return result(page, "signin-email-result")


def test_register_then_sign_in_with_the_key_alone_and_its_pin(
    rt: Runtime, operator: Actor, url: str, page: Page
) -> None:
    k.org(rt, operator)  # user verification required: the default
    card = f.active_card(rt, operator)
    token = k.ra_session(rt, operator)
    page.goto(f"{url}/webauthn/test")
    key = plug_in_key(page)

    status, registered = register(page, token, card.serial, nickname="Ward key")
    assert status == "ok", registered
    # without an allow-list no attestation is asked for, and the browser hides the model
    assert registered["aaguid"] == "00000000-0000-0000-0000-000000000000"
    assert registered["authenticator"] == "Unidentified authenticator (no AAGUID)"
    assert len(key.credentials()) == 1

    status, signed_in = sign_in_with_key(page)

    assert status == "ok", signed_in
    assert signed_in["card_serial"] == card.serial
    assert signed_in["key"] == "Ward key"
    assert "Ward key" in (page.text_content("#signin-key-progress") or "")
    event = k.events(rt, "fido2.sign_in")[-1]
    assert event.details["user_verified"] is True
    assert event.details["nickname"] == "Ward key"


def test_email_and_passcode_then_a_key_without_pin_where_it_is_not_required(
    rt: Runtime, operator: Actor, url: str, page: Page
) -> None:
    k.org(rt, operator, **k.NO_UV)
    h = a.holder(rt, operator)
    page.goto(f"{url}/webauthn/test")
    plug_in_key(page, user_verification=False)
    status, registered = register(page, k.ra_session(rt, operator), h.card.serial, resident=False)
    assert status == "ok", registered

    status, signed_in = sign_in_with_email(page, h.email)

    assert status == "ok", signed_in
    assert signed_in["card_serial"] == h.card.serial
    used = k.events(rt, "auth.second_factor")[-1]
    assert (used.outcome, used.details["user_verified"]) == ("success", False)


def test_a_key_that_cannot_verify_its_user_is_refused_where_it_is_required(
    rt: Runtime, operator: Actor, url: str, page: Page
) -> None:
    k.org(rt, operator)
    card = f.active_card(rt, operator)
    page.goto(f"{url}/webauthn/test")
    plug_in_key(page, user_verification=False)

    status, refused = register(page, k.ra_session(rt, operator), card.serial)

    assert status == "error"
    assert refused["code"] == "webauthn_not_allowed"
    with rt.db() as s:
        assert s.scalar(select(Association).where(Association.method == "fido2")) is None


def test_a_removed_key_cannot_sign_in_and_the_page_says_why(
    rt: Runtime, operator: Actor, url: str, page: Page
) -> None:
    k.org(rt, operator)
    card = f.active_card(rt, operator)
    page.goto(f"{url}/webauthn/test")
    key = plug_in_key(page)
    assert register(page, k.ra_session(rt, operator), card.serial)[0] == "ok"
    key.remove()

    status, refused = sign_in_with_key(page)

    assert status == "error"
    assert refused["code"] == "webauthn_not_allowed"
    assert "not used" in refused["error"]
    assert k.events(rt, "fido2.sign_in") == []


def test_a_model_the_policy_does_not_allow_cannot_be_registered(
    rt: Runtime, operator: Actor, url: str, page: Page
) -> None:
    k.org(rt, operator, fido2_allowed_aaguids=[YUBIKEY])
    card = f.active_card(rt, operator)
    page.goto(f"{url}/webauthn/test")
    plug_in_key(page)

    status, refused = register(page, k.ra_session(rt, operator), card.serial)

    assert status == "error"
    assert refused["code"] == "webauthn_authenticator_not_allowed"
    assert "Chromium virtual authenticator" in refused["error"]
    assert k.events(rt, "method.fido2_registration")[-1].outcome == "failure"


def test_an_allowed_model_registers_and_loses_access_when_the_policy_changes(
    rt: Runtime, operator: Actor, url: str, page: Page
) -> None:
    k.org(rt, operator, fido2_allowed_aaguids=[CHROMIUM_AAGUID])
    card = f.active_card(rt, operator)
    page.goto(f"{url}/webauthn/test")
    plug_in_key(page)
    status, registered = register(page, k.ra_session(rt, operator), card.serial)
    assert status == "ok", registered
    assert registered["aaguid"] == CHROMIUM_AAGUID
    assert registered["authenticator"] == "Chromium virtual authenticator (tests)"
    k.set_policy(rt, operator, "ORG1", fido2_allowed_aaguids=[YUBIKEY])

    status, refused = sign_in_with_key(page)

    assert status == "error"
    assert refused["code"] == "webauthn_authenticator_not_allowed"


def test_a_wrong_passcode_after_the_key_is_refused_like_any_other(
    rt: Runtime, operator: Actor, url: str, page: Page
) -> None:
    k.org(rt, operator)
    card = f.active_card(rt, operator)
    page.goto(f"{url}/webauthn/test")
    plug_in_key(page)
    assert register(page, k.ra_session(rt, operator), card.serial)[0] == "ok"

    status, refused = sign_in_with_key(page, passcode="not the passcode at all")

    assert status == "error"
    assert refused["code"] == "sign_in_failed"
