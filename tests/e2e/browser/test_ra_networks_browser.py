"""The networks page in headless Chromium, through the real pages: an RA manager corrects a
bad list from the error summary, saves a good one, and another instance of the service
sharing the database admits the new network at ingress."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect
from tests.e2e.browser.conftest import Live, shot, sign_in
from tests.support import auth as a
from tests.support import ra_web as w

from cardvault.services.system.runtime import Actor, Runtime, open_runtime
from cardvault.web.app import create_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]
HOME = "198.51.100.7"


@pytest.fixture
def other_instance(live: Live) -> Iterator[Runtime]:
    rt = open_runtime(live.rt.settings)
    yield rt
    rt.close()


def test_an_ra_manager_changes_the_networks_and_every_instance_applies_them(
    page: Page, live: Live, other_instance: Runtime, operator: Actor
) -> None:
    a.open_org(live.rt, operator, "ORGA")
    ra = w.ra_user(live.rt, operator, "ORGA", forename="Rana", surname="Admin")
    from_home = TestClient(create_app(other_instance), client=(HOME, 5000))
    assert from_home.get("/api/v1/health").status_code == 403  # the other instance has read

    sign_in(page, live, ra)
    page.get_by_role("link", name="Networks").click()
    expect(page.get_by_role("heading", name="Networks", exact=True)).to_be_visible()
    expect(page.get_by_text("Your address now is 127.0.0.1, inside these networks")).to_be_visible()
    box = page.get_by_label("Networks", exact=True)
    expect(box).to_have_value("127.0.0.0/8\n::1/128")

    box.fill("127.0.0.0/8\n::1/128\n198.51.100.7/24")
    page.get_by_role("button", name="Save the networks").click()
    summary = page.get_by_role("alert")
    expect(summary).to_be_focused()
    problem = summary.get_by_role("link", name=re.compile("has host bits set"))
    expect(problem).to_contain_text("the network is 198.51.100.0/24")
    shot(page, "11-networks")
    problem.click()
    expect(box).to_be_focused()
    expect(box).to_have_value("127.0.0.0/8\n::1/128\n198.51.100.7/24")

    box.fill("127.0.0.0/8\n::1/128\n198.51.100.0/24")
    page.get_by_role("button", name="Save the networks").click()
    expect(page.get_by_role("status")).to_contain_text("The networks of ORGA are saved (3")
    expect(page.get_by_role("listitem").filter(has_text="198.51.100.0/24")).to_be_visible()
    shot(page, "12-networks-saved")

    real = other_instance.clock
    other_instance.clock = lambda: real() + timedelta(seconds=1)  # its list is due again
    assert from_home.get("/api/v1/health").status_code == 200
