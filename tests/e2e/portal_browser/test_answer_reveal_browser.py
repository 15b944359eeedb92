"""Security answers on the portal in headless Chromium: password fields with a Show / Hide
button that works by mouse and keyboard and is announced, that password managers and paste
may fill, and that without JavaScript simply stay password fields and still work."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect
from tests.support import auth as a
from tests.support import factories as f
from tests.support import portal as p

from cardvault.services.signin.engine import Engine
from cardvault.services.system.runtime import Actor

from .conftest import Live

pytestmark = pytest.mark.browser


def _reset_link(live: Live, operator: Actor) -> str:
    a.open_org(live.rt, operator)
    h = a.holder(live.rt, operator, forename="Ann")
    p.lock(Engine(live.rt), h)
    live.wait_for_mail(1)
    message = live.mailbox.received[0].message
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    link = re.search(r"http://localhost:\d+/portal/reset/\S+", str(body.get_content()))
    assert link is not None
    return link.group(0)


def test_an_answer_is_hidden_until_its_show_button_is_pressed(
    live: Live, page: Page, operator: Actor
) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(_reset_link(live, operator))
    answer = page.get_by_label(f.QUESTIONS[0])
    expect(answer).to_have_attribute("type", "password")
    assert answer.get_attribute("autocomplete") is None  # password managers may fill it
    answer.fill("Rex")

    show = page.get_by_role("button", name="Show answer to question 1")
    expect(show).to_be_visible()
    expect(show).to_have_attribute("aria-controls", "f-answer1")
    show.click()
    expect(answer).to_have_attribute("type", "text")
    hide = page.get_by_role("button", name="Hide answer to question 1")
    expect(hide).to_have_text("Hide")
    expect(page.get_by_text("Your answer to question 1 is visible")).to_be_attached()
    expect(answer).to_have_value("Rex")  # nothing typed is lost
    hide.click()
    expect(answer).to_have_attribute("type", "password")
    expect(page.get_by_text("Your answer to question 1 is hidden")).to_be_attached()

    # by keyboard: Tab from the field reaches its button; Enter and Space press it
    second = page.get_by_label(f.QUESTIONS[1])
    second.focus()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Show answer to question 2")).to_be_focused()
    page.keyboard.press("Enter")
    expect(second).to_have_attribute("type", "text")
    page.keyboard.press("Space")
    expect(second).to_have_attribute("type", "password")

    # paste works (nothing blocks it), as from a password manager or a note
    page.evaluate("text => navigator.clipboard.writeText(text)", f.ANSWERS[2])
    third = page.get_by_label(f.QUESTIONS[2])
    third.focus()
    page.keyboard.press("Control+V")
    expect(third).to_have_value(f.ANSWERS[2])

    # an answer shown when the form is sent is hidden first (the browser keeps no plain text)
    page.get_by_role("button", name="Show answer to question 2").click()
    page.eval_on_selector(
        "form[action^='/portal/reset/']", "f => f.dispatchEvent(new Event('submit'))"
    )
    expect(second).to_have_attribute("type", "password")


def test_without_javascript_the_answers_stay_password_fields_and_work(
    live: Live, browser: Browser, operator: Actor
) -> None:
    link = _reset_link(live, operator)
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(link)
        for question in f.QUESTIONS:
            expect(page.get_by_label(question)).to_have_attribute("type", "password")
        expect(page.get_by_role("button", name=re.compile("^Show answer"))).to_have_count(0)
        expect(page.locator("button[data-reveal]")).to_have_count(3)  # there, but hidden
        page.get_by_label(f.QUESTIONS[0]).fill(f.ANSWERS[0])
        page.get_by_label(f.QUESTIONS[1]).fill(f.ANSWERS[1])
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Confirm it is you")
    finally:
        context.close()
