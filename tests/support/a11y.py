"""The accessibility check of the browser tier: axe-core and a 320-pixel reflow test on every
page state a browser test sees (WCAG 2.2 AA; docs/ra/guide.md, "Accessibility").

Every browser context a test uses is *watched*: an init script sends the page's HTML to the
test process when a page has loaded (a page, or an error state a POST re-rendered). When the
test ends, each state is replayed in a checker page of its own — the same HTML and CSP, the
stylesheet from the package, no scripts — where axe-core runs at the test's width and the
page is laid out again at 320 x 640 CSS pixels (1280 pixels at 400 % zoom, WCAG 1.4.10).
Replaying, rather than running axe in the test's own page, keeps the check from racing the
test: a test that clicks on at once cannot hide a page from it.

States that only scripts make (a dialog, an error a script shows) are checked where the test
makes them, with ``check_now(page)`` in the live page.

axe-core is vendored in ``tests/support/vendor/axe-core`` (``scripts/update-axe-core``
replaces it and records its digest), so the check needs no network and no npm.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Browser, BrowserContext, Page, Route

from cardvault.web.ui.headers import CSP
from cardvault.web.ui.templating import STATIC

VENDOR = Path(__file__).resolve().parent / "vendor" / "axe-core"
AXE_VERSION = (VENDOR / "VERSION").read_text().split()[0]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "a11y"
#: every WCAG 2.0, 2.1 and 2.2 rule at levels A and AA, and axe's best practices (one <h1>,
#: landmarks, heading order, unique table names) that the issue asks for as well
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa", "best-practice"]
NARROW = {"width": 320, "height": 640}
BINDING = "__cardvaultA11ySnapshot"
SNAPSHOT_ON_LOAD = f"""
addEventListener("load", () => {{
  const send = window.{BINDING};
  if (typeof send !== "function" || document.contentType !== "text/html") return;
  if (!location.protocol.startsWith("http")) return;  // about:blank, data: URLs
  const doctype = document.doctype ? "<!DOCTYPE " + document.doctype.name + ">" : "";
  send(location.href, doctype + document.documentElement.outerHTML);
}}, {{ once: true }});
"""
RUN_AXE = """async (tags) => {
  // target-size (WCAG 2.5.8, AA) is off in axe by default; the tier wants it
  const result = await axe.run(document, {runOnly: {type: "tag", values: tags},
                                           rules: {"target-size": {enabled: true}},
                                           resultTypes: ["violations"]});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map(n => ({target: n.target.join(" "),
                                          html: n.html.slice(0, 200),
                                          summary: n.failureSummary}))}));
}"""
MEASURE_REFLOW = "\n".join(
    line
    for line in Path(__file__).with_name("a11y_reflow.js").read_text().splitlines()
    if not line.startswith("//")
)
_VOLATILE = re.compile(r'(name="(?:csrf_token|form_id)" value=|data-csrf=)"[^"]*"|\d+')


@dataclass(frozen=True)
class Finding:
    """One failure on one page state, in words a developer can act on."""

    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}\n    {self.what}"


def axe_source() -> str:
    return (VENDOR / "axe.min.js").read_text()


def run_axe(page: Page) -> list[dict[str, Any]]:
    """axe-core's WCAG A/AA and best-practice violations in ``page`` as it is now."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(axe_source())  # CDP evaluation: the page's CSP does not apply to it
    version = page.evaluate("axe.version")
    assert version == AXE_VERSION, f"axe-core {version} ran, {AXE_VERSION} is vendored"
    violations: list[dict[str, Any]] = page.evaluate(RUN_AXE, TAGS)
    return violations


def describe_violations(violations: list[dict[str, Any]]) -> list[str]:
    lines = []
    for v in violations:
        for node in v["nodes"]:
            lines.append(
                f"axe {v['id']} ({v['impact']}): {v['help']}\n      at {node['target']}: "
                f"{node['html']}\n      {(node['summary'] or '').replace(chr(10), ' ')}"
            )
    return lines


def measure_reflow(page: Page) -> list[str]:
    """What makes ``page`` scroll sideways at its present width (nothing, at best)."""
    got = page.evaluate(MEASURE_REFLOW)
    problems = []
    if got["scrollWidth"] > got["width"]:
        problems.append(
            f"reflow: the page is {got['scrollWidth']} px wide at {got['width']} px "
            f"({'; '.join(got['sticking']) or 'no single element found'})"
        )
    problems += [
        f"reflow: {s} scrolls sideways but is not a table's named, focusable region"
        for s in got["scrollers"]
    ]
    return problems


def check_now(page: Page) -> None:
    """Check the live page as it is now (a dialog or a scripted error that no load shows):
    axe at the page's width, then reflow at 320 x 640; the page's size is put back."""
    where = f"{page.url} — {page.title()!r} (live)"
    problems = describe_violations(run_axe(page))
    size = page.viewport_size
    page.set_viewport_size(NARROW)
    try:
        problems += measure_reflow(page)
    finally:
        if size:
            page.set_viewport_size(size)
    assert not problems, "\n".join(str(Finding(where, p)) for p in problems)


@dataclass
class Checker:
    """One replay page per test process; each distinct state is checked once per process."""

    browser: Browser
    seen: dict[str, list[str]] = field(default_factory=dict)
    _page: Page | None = None
    _html: str = ""

    def page(self, viewport: dict[str, int]) -> Page:
        if self._page is None:
            context = self.browser.new_context(viewport=viewport)
            self._page = context.new_page()
            self._page.set_default_timeout(15000)
            self._page.route("**/*", self._serve)
        else:
            self._page.set_viewport_size(viewport)
        return self._page

    def _serve(self, route: Route) -> None:
        request = route.request
        if request.resource_type == "document":
            route.fulfill(
                status=200,
                headers={
                    "content-type": "text/html; charset=utf-8",
                    "content-security-policy": CSP,
                },
                body=self._html,
            )
            return
        path = urlsplit(request.url).path
        if path == "/favicon.ico":
            path = "/static/ui/favicon.ico"
        file = STATIC / path.removeprefix("/static/")
        if path.startswith("/static/") and not path.endswith(".js") and file.is_file():
            route.fulfill(path=file)
        else:
            route.abort()  # no scripts (the snapshot is what they made), nothing else fetched

    def check(self, url: str, html: str, viewport: dict[str, int]) -> list[str]:
        key = hashlib.sha256((json.dumps(viewport) + _VOLATILE.sub("", html)).encode()).hexdigest()
        if key not in self.seen:
            self.seen[key] = self._replay(url, html, viewport)
        return self.seen[key]

    def _replay(self, url: str, html: str, viewport: dict[str, int]) -> list[str]:
        page = self.page(viewport)
        self._html = html
        # without its #fragment: a goto to the same address with one would not load anything
        page.goto(url.split("#", 1)[0], wait_until="load")
        problems = describe_violations(run_axe(page))
        page.set_viewport_size(NARROW)
        problems += measure_reflow(page)
        _log(url, page.title(), problems)
        return problems


@dataclass
class Watch:
    """The page states one browser context loaded, checked when the test ends."""

    viewport: dict[str, int]
    states: list[tuple[str, str]] = field(default_factory=list)

    def record(self, _source: Any, url: str, html: str) -> None:
        self.states.append((url, html))

    def assert_accessible(self, checker: Checker, context: BrowserContext) -> None:
        for page in context.pages:  # let snapshot messages still in flight arrive
            page.wait_for_timeout(50)
        findings = []
        for url, html in self.states:
            title = re.search(r"<title>(.*?)</title>", html, re.S)
            where = f"{url} — {title.group(1).strip() if title else 'no title'!r}"
            findings += [Finding(where, p) for p in checker.check(url, html, self.viewport)]
        assert not findings, (
            f"{len(findings)} accessibility problem(s) in {len(self.states)} page state(s):\n"
            + "\n".join(map(str, findings))
        )


def watch(context: BrowserContext, viewport: dict[str, int] | None = None) -> Watch:
    """Record every page state ``context`` loads, for ``Watch.assert_accessible``."""
    w = Watch(viewport=viewport or {"width": 1280, "height": 720})
    context.expose_binding(BINDING, w.record)
    context.add_init_script(SNAPSHOT_ON_LOAD)
    return w


def _log(url: str, title: str, problems: list[str]) -> None:
    """A line per state checked (test-artifacts/a11y/): what the tier covered, and how."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with (ARTIFACTS / "checked.tsv").open("a") as out:
        out.write(f"{title}\t{urlsplit(url).path}\t{len(problems)}\n")
