"""The API docs page loads only the vendored Swagger UI, which is the one VERSION names,
unchanged (scripts/update-swagger-ui replaces both together)."""

from __future__ import annotations

import hashlib
import re

from cardvault.web.api_docs import PAGE
from cardvault.web.ui.templating import STATIC

VENDOR = STATIC / "vendor" / "swagger-ui"


def test_the_page_loads_nothing_from_elsewhere_and_runs_no_inline_script() -> None:
    sources = re.findall(r'(?:src|href)="([^"]+)"', PAGE)
    assert sources
    assert all(s.startswith("/") and not s.startswith("//") for s in sources)
    assert "<script>" not in PAGE
    assert "<style" not in PAGE
    for source in sources:
        if source.startswith("/static/"):
            assert (STATIC / source.removeprefix("/static/")).is_file(), source


def test_the_vendored_swagger_ui_matches_its_recorded_digests() -> None:
    version, js, css, integrity = (VENDOR / "VERSION").read_text().split()
    bundle = (VENDOR / "swagger-ui-bundle.js").read_bytes()
    assert js == "js-sha256:" + hashlib.sha256(bundle).hexdigest()
    assert (
        css == "css-sha256:" + hashlib.sha256((VENDOR / "swagger-ui.css").read_bytes()).hexdigest()
    )
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    assert integrity.startswith("npm-integrity:sha512-")
    assert b"sourceMappingURL" not in bundle[-300:]  # the map is not shipped
    assert b"Apache License" in (VENDOR / "LICENSE").read_bytes()
