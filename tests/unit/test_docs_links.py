"""README.md and docs/ stay one linked tree: every relative link resolves, and so does every
path of the repository (``docs/…``, ``tests/…``, ``src/…``) named anywhere: pages, help texts,
docstrings, tests, the docs' own prose.

Files move (docs/ was folded into operator/, user/, ra/, protocols/ and architecture); a link
left behind is found here, not by a reader.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tests.support import markdown_links as md

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINKS = [link for doc in DOCUMENTS for link in md.links(doc) if link.relative]
#: a path as prose names it, e.g. "docs/operator/guide.md#exit-codes" or "tests/unit/card/"
REPO_PATH = re.compile(r"(?<![\w/.-])(?:docs|tests|src|bench|scripts)/[\w./-]*[\w/]")
NAMING = [
    *DOCUMENTS,
    ROOT / "Makefile",
    *(
        path
        for top in ("src", "tests", "bench", "scripts")
        for path in sorted((ROOT / top).rglob("*"))
        if path.is_file() and path.suffix in {".py", ".html", ".js", ".txt", ".sh", ""}
    ),
]


def _where(link: md.Link) -> str:
    return f"{link.source.relative_to(ROOT)}:{link.line}"


def test_the_tree_has_links_to_check() -> None:
    assert len(DOCUMENTS) > 15
    assert len(LINKS) > 50


@pytest.mark.parametrize("link", LINKS, ids=_where)
def test_every_relative_link_resolves(link: md.Link) -> None:
    assert md.broken(link) is None, f"{_where(link)}: {md.broken(link)}"


def test_every_repository_path_named_anywhere_exists() -> None:
    missing = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in NAMING
        for name in REPO_PATH.findall(path.read_text(encoding="utf-8", errors="replace"))
        if not (ROOT / name.rstrip(".")).exists()
    ]
    assert missing == []


def test_the_checker_finds_a_missing_file_and_a_missing_anchor(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text(
        "# Exit codes\n\n## Exit codes\n\n```\n[not a link](nowhere.md)\n```\n"
        "[ok](a.md#exit-codes-1) [gone](b.md) [no anchor](a.md#exit) `[code](span.md)`\n"
        "[ref]: a.md#exit-codes\n"
    )
    found = md.links(tmp_path / "a.md")
    assert [link.target for link in found] == [
        "a.md#exit-codes-1",
        "b.md",
        "a.md#exit",
        "a.md#exit-codes",
    ]
    assert [md.broken(link) for link in found] == [
        None,
        "b.md: no such file",
        "a.md#exit: no heading with the anchor #exit",
        None,
    ]


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Networks: who reaches the service", "networks-who-reaches-the-service"),
        ("The `cardvault` command (exit codes)", "the-cardvault-command-exit-codes"),
        ("Lockout: passcodes and second factors", "lockout-passcodes-and-second-factors"),
        ("See [the API](api.md) — v1", "see-the-api--v1"),
    ],
)
def test_headings_get_githubs_anchors(heading: str, anchor: str) -> None:
    assert md.slug(heading) == anchor
