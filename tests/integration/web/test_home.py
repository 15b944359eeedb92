"""What a new user sees at ``/``, over real HTTP: the landing page, the site's icon, and
"not found" as a page for browsers but problem+json for the API."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from tests.support import auth as a

from cardvault.services.system.runtime import Actor, Runtime

PROBLEM = "application/problem+json"
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
#: nothing here depends on the database (the areas' pages are tested on both elsewhere)
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
ICON_LINKS = (
    '<link rel="icon" href="/favicon.ico"',
    '<link rel="icon" href="/static/ui/favicon.svg"',
)


@pytest.fixture(autouse=True)
def loopback_network(rt: Runtime, operator: Actor) -> None:
    """The areas behind the ingress gate answer this test's client (on loopback)."""
    a.local_network(rt, operator)


@pytest.fixture
def client(live_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_url, timeout=10) as http:
        yield http


def test_the_landing_page_says_what_cardvault_is_and_links_its_parts(
    client: httpx.Client,
) -> None:
    page = client.get("/", headers=BROWSER)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    html = page.text
    assert '<h1 class="heading-xl">cardvault</h1>' in html
    assert "virtual smartcards" in html
    links = set(re.findall(r'<a class="link" href="([^"]+)"', html))
    assert {"/ra", "/portal", "/api/v1/docs", "/api/v1/openapi.json"} <= links
    for guide in ("docs/ra/guide.md", "docs/user/portal.md", "docs/operator/guide.md"):
        assert guide in html
    for link in ICON_LINKS:
        assert link in html
    assert "Development mode" not in html  # only for make run
    for target in ("/ra", "/portal", "/api/v1/docs", "/api/v1/openapi.json"):
        assert client.get(target).status_code == 200, target


def test_the_landing_page_in_development_mode_says_where_the_demo_accounts_are(
    client: httpx.Client, rt: Runtime
) -> None:
    rt.settings.development = True
    html = client.get("/").text
    assert "demo-credentials.json" in html
    assert 'href="/portal/dev/outbox"' in html


def test_the_site_has_an_icon(client: httpx.Client) -> None:
    ico = client.get("/favicon.ico")
    assert ico.status_code == 200
    assert ico.headers["content-type"] == "image/vnd.microsoft.icon"
    assert ico.content[:4] == b"\x00\x00\x01\x00"  # ICONDIR: reserved 0, type 1 (icon)
    assert int.from_bytes(ico.content[4:6], "little") == 3  # 16, 32 and 48 pixels
    svg = client.get("/static/ui/favicon.svg")
    assert svg.status_code == 200
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.text.lstrip().startswith("<svg")


@pytest.mark.parametrize("path", ["/ra", "/portal", "/ra/no-such-page", "/no-such-page"])
def test_every_page_layout_links_the_icon(client: httpx.Client, path: str) -> None:
    html = client.get(path, headers=BROWSER).text
    for link in ICON_LINKS:
        assert link in html


def test_an_unknown_path_is_a_page_for_a_browser(client: httpx.Client) -> None:
    for path in ("/no-such-page", "/ra/no-such-page", "/portal/no-such-page"):
        answer = client.get(path, headers=BROWSER)
        assert answer.status_code == 404, path
        assert answer.headers["content-type"].startswith("text/html"), path
        assert "Page not found" in answer.text
        assert "Go to the start page" in answer.text
    assert '<a class="link" href="/">' in client.get("/no-such-page", headers=BROWSER).text


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/no-such-page", {}),
        ("/no-such-page", {"Accept": "application/json"}),
        ("/api/v1/no-such-thing", BROWSER),
        ("/api", BROWSER),
        ("/ra/api/no-such-thing", BROWSER),
    ],
)
def test_an_unknown_path_is_problem_json_for_programs_and_under_the_api(
    client: httpx.Client, path: str, headers: dict[str, str]
) -> None:
    answer = client.get(path, headers=headers)
    assert answer.status_code == 404
    assert answer.headers["content-type"] == PROBLEM
    assert answer.json()["code"] == "not_found"


def test_a_wrong_method_on_the_landing_page_is_a_page_for_a_browser(
    client: httpx.Client,
) -> None:
    answer = client.post("/", headers=BROWSER)
    assert answer.status_code == 405
    assert answer.headers["content-type"].startswith("text/html")
    assert client.post("/").headers["content-type"] == PROBLEM
