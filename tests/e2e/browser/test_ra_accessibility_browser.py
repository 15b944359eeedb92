"""Every vRA Manager page at 320 x 640 CSS pixels (1280 px at 400 % zoom), by keyboard.

Each page fits the width (WCAG 1.4.10: only a data table scrolls, inside its own box), has
one <h1> and a title of its own (1.3.1, 2.4.2, 2.4.6), says it is in British English (3.1.1),
names its tables and their scrolling boxes, which the keyboard reaches (2.1.1, 4.1.2). An
error summary's link brings its field into view with its label (3.3.1). Secrets can be pasted
and filled by a password manager (3.3.8). Besides these checks, the page fixture runs axe-core
on every state loaded here (tests/support/a11y.py).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select
from tests.e2e.browser.conftest import Live, sign_in
from tests.support import auth as a
from tests.support import factories as f
from tests.support import ra_web as w
from tests.support.a11y import NARROW

from cardvault.services.cards import methods
from cardvault.services.directory import registry as directory
from cardvault.services.ra import methods as ra_methods
from cardvault.services.ra.actions import RaContext
from cardvault.services.system.runtime import Actor
from cardvault.store.models import Association

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _people(live: Live, operator: Actor) -> tuple[w.RaUser, str, str, str, str]:
    """An RA; a holder with several methods (a long label among them), a card waiting for
    enrolment, and a person without a card."""
    rt = live.rt
    a.open_org(rt, operator, "ORGA")
    ra = w.ra_user(rt, operator, "ORGA")
    holder = a.holder(rt, operator, "ORGA", forename="Hana", surname="Holder")
    with rt.db() as s:
        org_id = directory.get_org(s, "ORGA").id
    ctx = RaContext(
        actor=operator, organisation_id=org_id, organisation_code="ORGA", role="ra_agent"
    )
    uid = holder.card.user_id
    ra_methods.add_ad_account(rt, ctx, uid, "NORTHERNHOSPITALSTRUST\\hana.holder.longname")
    ra_methods.add_hr_card(rt, ctx, uid, "04A22B1AC35E80", "HR card of the east wing, building 7")
    methods.add_totp(rt, operator, serial=holder.card.serial, org_code="ORGA", label="Work phone")
    waiting = f.issued_card(rt, operator, "ORGA", forename="Wanda", surname="Waiting").user_id
    cardless = f.person(rt, operator, "ORGA", forename="Cara", surname="Cardless")
    with rt.db() as s:
        method = s.scalar(select(Association.id).where(Association.method == "ad_account"))
    assert method is not None
    return ra, uid, waiting, cardless, method


def _measure(page: Page) -> dict[str, object]:
    return page.evaluate(
        """() => ({
          width: document.documentElement.scrollWidth,
          viewport: document.documentElement.clientWidth,
          lang: document.documentElement.lang,
          h1: document.querySelectorAll("h1").length,
          offPasswords: document.querySelectorAll("input[type=password][autocomplete=off]").length,
        })"""
    )


def test_every_page_fits_320_pixels_and_has_one_heading_and_its_own_title(
    page: Page, live: Live, operator: Actor
) -> None:
    ra, holder, waiting, cardless, method = _people(live, operator)
    sign_in(page, live, ra)
    page.set_viewport_size(NARROW)
    person = f"/ra/persons/{holder}"
    tour = [
        "/ra/role",
        "/ra/persons",
        "/ra/persons?q=Holder",
        person,
        f"{person}/methods/ad",
        f"{person}/methods/totp",
        f"{person}/methods/device",
        f"{person}/methods/device?application=mia",
        f"{person}/methods/fido2",
        f"{person}/methods/hr-card",
        f"{person}/methods/{method}/remove",
        f"{person}/card/lock",
        f"{person}/card/revoke",
        f"/ra/persons/{waiting}/enrol",
        f"/ra/persons/{waiting}/invite",
        f"/ra/persons/{cardless}/issue",
        "/ra/audit",
        "/ra/notifications/failed",
        "/ra/organisation/networks",
        f"/ra/reauth?next={person}",
        "/ra/accessibility",
        "/ra/signed-out",
        "/ra/persons/999999999999",
    ]
    titles: dict[str, str] = {}
    for path in tour:
        page.goto(live.url + path)
        got = _measure(page)
        assert got["width"] == got["viewport"] == NARROW["width"], (path, got)
        assert got["h1"] == 1, (path, got)
        assert got["lang"] == "en-GB", path
        assert got["offPasswords"] == 0, path
        titles[path] = page.title()
        for table in page.get_by_role("table").all():
            expect(table).to_have_accessible_name(re.compile(r"\w"))
        for box in page.locator(".table-wrap").all():
            expect(box).to_have_attribute("role", "region")
            expect(box).to_have_attribute("tabindex", "0")
            expect(box).to_have_accessible_name(re.compile(r"\w"))
    repeated = {t for t in titles.values() if list(titles.values()).count(t) > 1}
    assert not repeated, {p: t for p, t in titles.items() if t in repeated}

    # an error state at 320 pixels: the AD account page without an account
    page.goto(f"{live.url}{person}/methods/ad")
    page.get_by_role("button", name="Associate").click()
    expect(page.get_by_role("alert")).to_be_focused()
    assert _measure(page)["width"] == NARROW["width"]
    expect(page).to_have_title(re.compile("^Error: Associate an AD account"))


def test_a_wide_table_scrolls_by_keyboard_inside_its_named_region(
    page: Page, live: Live, operator: Actor
) -> None:
    ra, holder, *_ = _people(live, operator)
    sign_in(page, live, ra)
    page.set_viewport_size(NARROW)
    page.goto(f"{live.url}/ra/persons/{holder}")
    region = page.get_by_role("region", name="Authentication methods in ORGA")
    expect(region.get_by_role("table", name="Authentication methods in ORGA")).to_be_visible()
    # the hidden "Remove …" words stay inside the box (they made the page 490 px wide)
    assert region.evaluate("el => el.scrollWidth > el.clientWidth")
    assert page.evaluate("document.documentElement.scrollWidth") == NARROW["width"]
    page.locator("#methods-heading").evaluate("el => el.scrollIntoView()")
    for _ in range(40):  # Tab from the top of the page until the region has focus
        page.keyboard.press("Tab")
        if region.evaluate("el => el === document.activeElement"):
            break
    expect(region).to_be_focused()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.wait_for_function("el => el.scrollLeft > 0", arg=region.element_handle())


def test_an_error_summary_link_shows_the_field_with_its_label(
    page: Page, live: Live, operator: Actor
) -> None:
    ra, _holder, waiting, *_ = _people(live, operator)
    sign_in(page, live, ra)
    page.set_viewport_size(NARROW)
    page.goto(f"{live.url}/ra/persons/{waiting}/enrol")
    page.get_by_role("button", name="Enrol").click()
    summary = page.get_by_role("alert")
    expect(summary).to_be_focused()
    link = summary.get_by_role("link").last
    target = (link.get_attribute("href") or "#").removeprefix("#")
    link.click()
    field = page.locator(f"#{target}")
    expect(field).to_be_focused()
    label = page.locator(f"label[for='{target}']")
    box, field_box = label.bounding_box(), field.bounding_box()
    assert box is not None
    assert field_box is not None
    assert box["y"] >= 0, box  # the label is on screen ...
    assert field_box["y"] + field_box["height"] <= NARROW["height"], field_box  # ... and the field


def test_secrets_can_be_pasted_and_answers_filled_by_a_password_manager(
    page: Page, live: Live, operator: Actor
) -> None:
    ra, _holder, waiting, *_ = _people(live, operator)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])

    def paste(field: str, text: str) -> None:
        page.evaluate("text => navigator.clipboard.writeText(text)", text)
        page.get_by_label(field, exact=True).focus()
        page.keyboard.press("Control+V")
        expect(page.get_by_label(field, exact=True)).to_have_value(text)

    page.goto(f"{live.url}/ra")
    paste("Passcode", f.STRONG_PASSCODE)
    sign_in(page, live, ra)
    page.goto(f"{live.url}/ra/persons/{waiting}/enrol")
    expect(page.locator("form[autocomplete=off]")).to_have_count(0)
    paste("Issuance passcode", f.ISSUANCE_PASSCODE)
    paste("Choose a passcode", f.STRONG_PASSCODE)
    for n in (1, 2, 3):
        answer = page.get_by_role("group", name=f"Security question {n}").get_by_label(
            "Answer", exact=True
        )
        assert answer.get_attribute("autocomplete") is None  # a password manager may fill it
    page.evaluate("text => navigator.clipboard.writeText(text)", "Rex the dog")
    page.get_by_role("group", name="Security question 1").get_by_label("Answer", exact=True).focus()
    page.keyboard.press("Control+V")
    expect(
        page.get_by_role("group", name="Security question 1").get_by_label("Answer", exact=True)
    ).to_have_value("Rex the dog")
