"""The relative links of Markdown files and the anchors GitHub gives their headings.

Pure text work (no cardvault import), for the test that keeps README.md and docs/ linked
together as files move: a link is ``[text](target)`` or ``![alt](target)`` outside code
(fenced blocks and inline code spans are not links), or a reference definition
``[label]: target``; an anchor is a heading's GitHub slug or an explicit ``id``/``name``.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

_FENCE = re.compile(r"^\s*(```|~~~)")
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
_INLINE = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_HTML_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"")
_EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)


@dataclass(frozen=True)
class Link:
    """One link as written: the file it is in, its line, and its target."""

    source: Path
    line: int
    target: str

    @property
    def relative(self) -> bool:
        """A link to another file of the tree or to an anchor (not a URL, not a site path)."""
        return not _EXTERNAL.match(self.target) and not self.target.startswith("/")


def _prose_lines(text: str) -> list[tuple[int, str]]:
    """The lines outside fenced code blocks, with inline code spans blanked out."""
    lines: list[tuple[int, str]] = []
    fence: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        opened = _FENCE.match(line)
        if fence is not None:
            if opened and opened.group(1) == fence:
                fence = None
            continue
        if opened:
            fence = opened.group(1)
            continue
        lines.append((number, _CODE_SPAN.sub("", line)))
    return lines


def links(path: Path) -> list[Link]:
    """Every link of a Markdown file, in the order written."""
    found: list[Link] = []
    for number, line in _prose_lines(path.read_text(encoding="utf-8")):
        found.extend(Link(path, number, m.group(1)) for m in _INLINE.finditer(line))
        reference = _REFERENCE.match(line)
        if reference:
            found.append(Link(path, number, reference.group(1)))
    return found


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of a Markdown file; a repeated heading gets -1, -2… as on GitHub."""
    seen: Counter[str] = Counter()
    found: set[str] = set()
    text = path.read_text(encoding="utf-8")
    for _, line in _prose_lines(text):
        heading = _HEADING.match(line)
        if heading:
            base = slug(heading.group(2))
            found.add(base if seen[base] == 0 else f"{base}-{seen[base]}")
            seen[base] += 1
    found.update(_HTML_ANCHOR.findall(text))
    return found


def broken(link: Link) -> str | None:
    """Why a relative link does not resolve (a missing file or anchor), or None if it does."""
    target, _, anchor = link.target.partition("#")
    resolved = (link.source.parent / target).resolve() if target else link.source
    if not resolved.exists():
        return f"{link.target}: no such file"
    if anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
        return f"{link.target}: no heading with the anchor #{anchor}"
    return None
