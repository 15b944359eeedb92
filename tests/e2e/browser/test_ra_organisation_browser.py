"""RA managers run their organisation in headless Chromium (issue 19), through the real pages
(each page state is checked with axe-core by the ``page`` fixture): add a person after an
error, import a CSV file (dry run, then the good rows), add a person of another
organisation, change the settings, give a role that a second RA manager approves, a
sponsor's approval, and a leaver. The screenshots are the RA guide's (docs/ra/img/, copied
by scripts/ra-guide-screenshots)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from tests.e2e.browser.conftest import Live, shot, sign_in
from tests.support import auth as a
from tests.support import factories as f
from tests.support import ra_web as w

from cardvault.services.directory import registry as directory
from cardvault.services.system.runtime import Actor

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CSV = (
    "user_id,forename,surname,email,mobile\n"
    "555000800001,Grace,Good,grace@example.org,+44 7700 900001\n"
    '555000800002,=HYPERLINK("http://x"),Bad,,\n'
    "555000800003,Harry,Good,harry@example.org,\n"
)


def _choose_role(page: Page, label: re.Pattern[str], heading: str) -> None:
    page.get_by_label(label).check()
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name=heading)).to_be_visible()


def test_an_ra_manager_adds_people_one_by_one_by_csv_and_from_another_organisation(
    page: Page, live: Live, operator: Actor
) -> None:
    a.open_org(live.rt, operator, "ORGA")
    a.open_org(live.rt, operator, "ORGB")
    ra = w.ra_user(live.rt, operator, "ORGA", forename="Rana", surname="Admin")
    elsewhere = f.active_card(live.rt, operator, "ORGB", forename="Bea", surname="Both",
                              email="bea@example.org")  # fmt: skip
    sign_in(page, live, ra)

    page.get_by_role("link", name="Add a person", exact=True).click()
    page.get_by_label("User id").fill("555000800010")
    page.get_by_label("Forename").fill("=cmd")
    page.get_by_label("Surname").fill("Newcomer")
    page.get_by_label("Email address").fill("nora@example.org")
    page.get_by_role("button", name="Add the person").click()
    summary = page.get_by_role("alert")
    expect(summary).to_be_focused()
    problem = summary.get_by_role("link", name=re.compile("spreadsheet would run as a formula"))
    shot(page, "20-add-person-error")
    problem.click()
    expect(page.get_by_label("Forename")).to_be_focused()
    page.get_by_label("Forename").fill("Nora")
    page.get_by_role("button", name="Add the person").click()
    expect(page.get_by_role("heading", name="Nora Newcomer")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Nora Newcomer is added to ORGA")

    page.get_by_role("link", name="Find a person").click()
    page.get_by_role("link", name="Import people from a CSV file").click()
    files = [{"name": "people.csv", "mimeType": "text/csv", "buffer": CSV.encode()}]
    page.get_by_label("CSV file").set_input_files(files)
    page.get_by_role("button", name="Send the file").click()
    expect(
        page.get_by_role("heading", name=re.compile("3 rows checked: 2 good, 1 with"))
    ).to_be_visible()
    row = page.get_by_role("row").filter(has_text="555000800002")
    expect(row).to_contain_text("which a spreadsheet would run as a formula")
    shot(page, "21-csv-dry-run")
    page.get_by_label("CSV file").set_input_files(files)
    page.get_by_label("Import the good rows only").check()
    page.get_by_role("button", name="Send the file").click()
    expect(page.get_by_role("status")).to_contain_text("2 people added to ORGA; 1 rows with")
    page.get_by_label(re.compile("Name, email address")).fill("Good")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("link", name="Grace Good")).to_be_visible()
    expect(page.get_by_role("link", name="Harry Good")).to_be_visible()

    page.get_by_role("link", name="Add a person from another organisation").click()
    page.get_by_label("User id").fill(elsewhere.user_id)
    page.get_by_label("Email address").fill("bea@example.org")
    shot(page, "22-add-from-another-organisation")
    page.get_by_role("button", name="Add them to ORGA").click()
    expect(page.get_by_role("heading", name="Bea Both")).to_be_visible()
    expect(page.get_by_text(elsewhere.serial)).to_be_visible()


def test_settings_roles_with_a_second_manager_and_a_sponsors_approval(
    page: Page, live: Live, operator: Actor
) -> None:
    a.open_org(live.rt, operator, "ORGA")
    directory.update_policy(live.rt, operator, "ORGA", {"role_grants_need_approval": True})
    ra = w.ra_user(live.rt, operator, "ORGA", forename="Rana", surname="Admin")
    second = w.ra_user(live.rt, operator, "ORGA", forename="Sid", surname="Second")
    newbie = f.person(live.rt, operator, "ORGA", forename="Nick", surname="New")
    sign_in(page, live, ra)

    page.get_by_role("link", name="Settings").click()
    box = page.get_by_label(re.compile("Reset links last"))
    box.fill("soon")
    page.get_by_role("button", name="Save the settings").click()
    summary = page.get_by_role("alert")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("Reset links last: enter a whole number of minutes")
    shot(page, "23-settings-error")
    box.fill("15")
    page.get_by_role("button", name="Save the settings").click()
    expect(page.get_by_role("status")).to_contain_text("Settings saved: reset link minutes")

    page.get_by_role("link", name="RA roles").click()
    page.get_by_label(re.compile("User id of a person")).fill(newbie)
    page.get_by_label("Role", exact=True).select_option("ra_agent")
    page.get_by_role("button", name="Give the role").click()
    expect(page.get_by_role("status")).to_contain_text("waits for a second RA manager")
    expect(page.get_by_text("You asked; another RA manager decides")).to_be_visible()
    shot(page, "24-roles-pending")
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, live, second)
    page.get_by_role("link", name="RA roles").click()
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("status")).to_contain_text("The role RA agent is given to Nick New")
    expect(page.get_by_role("row").filter(has_text=newbie)).to_contain_text("RA agent")
    page.get_by_role("button", name="Sign out").click()

    directory.grant_role(live.rt, operator, user_id=ra.holder.card.user_id, org_code="ORGA",
                         role="sponsor")  # fmt: skip
    page.goto(f"{live.url}/ra")
    page.get_by_label("Email address or Windows account").fill(ra.email)
    page.get_by_label("Passcode").fill(f.STRONG_PASSCODE)
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Enter the code from your authenticator app").fill(w.fresh_code(ra))
    page.get_by_role("button", name="Sign in").click()
    _choose_role(page, re.compile(r"\(ORGA\) . sponsor"), "Card approvals")
    expect(page.get_by_role("link", name="Find a person")).to_have_count(0)
    page.get_by_role("row").filter(has_text="Nick New").get_by_role("button").click()
    expect(page.get_by_role("status")).to_contain_text("A card for Nick New is approved")
    shot(page, "25-sponsor-approvals")


def test_a_leaver_keeps_the_card_in_the_other_organisation(
    page: Page, live: Live, operator: Actor
) -> None:
    a.open_org(live.rt, operator, "ORGA")
    a.open_org(live.rt, operator, "ORGB")
    ra = w.ra_user(live.rt, operator, "ORGA", forename="Rana", surname="Admin")
    card = f.active_card(live.rt, operator, "ORGA", forename="Lee", surname="Leaver")
    directory.add_membership(live.rt, operator, card.user_id, "ORGB")
    sign_in(page, live, ra)
    page.goto(f"{live.url}/ra/persons/{card.user_id}")
    page.get_by_role("link", name="Lee Leaver has left ORGA").click()
    page.get_by_label("Why they left").fill("Moved to another trust")
    page.get_by_role("button", name="Record the leaver").click()
    summary = page.get_by_role("alert")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("Confirm that Lee Leaver has left")
    page.get_by_label("Yes, Lee Leaver has left ORGA").check()
    shot(page, "26-leaver")
    page.get_by_role("button", name="Record the leaver").click()
    expect(page.get_by_role("status")).to_contain_text("their card still works in ORGB")
