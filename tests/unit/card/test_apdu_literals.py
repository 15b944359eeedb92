"""Status words are written once, in card/apdu.py (``Sw``): everything else names them.

The connector's cache, its relay and the service relay once each kept their own
``b"\\x90\\x00"``; a word typed twice drifts. This test reads every module in ``src/`` and
fails on a bare status word outside card/apdu.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[3] / "src" / "cardvault"
HOME = SRC / "card" / "apdu.py"

#: the shapes a status word takes when it is typed instead of named
BARE_STATUS_WORD = re.compile(
    r"""
      b["']\\x(?:6[1-9a-f]|9[0-9a-f])\\x[0-9a-f]{2}["']     # b"\x90\x00", b"\x6a\x82"
    | \b0x(?:9000|6[1-9a-f][0-9a-f]{2})\b                  # 0x9000, 0x6A82
    | bytes\(\(\s*0x(?:6[1-9a-f]|9[0-9a-f])\s*,            # bytes((0x61, n)), bytes((0x6F, 0x00))
    | fromhex\(["'](?:9000|6[1-9a-f][0-9a-f]{2})["']\)     # bytes.fromhex("9000")
    | \[-2\]\s*[!=]=\s*0x                                   # answer[-2] == 0x61
    """,
    re.IGNORECASE | re.VERBOSE,
)


def bare_status_words(text: str) -> list[str]:
    return [match.group(0) for match in BARE_STATUS_WORD.finditer(text)]


def test_no_bare_status_word_outside_card_apdu() -> None:
    found = {
        str(path.relative_to(SRC)): hits
        for path in sorted(SRC.rglob("*.py"))
        if path != HOME and (hits := bare_status_words(path.read_text()))
    }
    assert found == {}, "name status words with cardvault.card.apdu.Sw"


@pytest.mark.parametrize(
    "line",
    [
        '_OK = b"\\x90\\x00"',
        '_NOT_FOUND = b"\\x6a\\x82"',
        "RELAY_FAILED = bytes((0x6F, 0x00))",
        "return head + bytes((0x61, len(rest)))",
        "if sw == 0x6982:",
        'OK = bytes.fromhex("9000")',
        "while response[-2] == 0x61:",
    ],
)
def test_the_check_sees_each_shape(line: str) -> None:
    assert bare_status_words(line)


@pytest.mark.parametrize(
    "line",
    [
        "_OK = Sw.SUCCESS.wire()",
        "return tlv.encode(0x61, body)",  # the application template tag, not a status word
        "RETIRED_15 = 0x90",
        "GET_UID = [0xFF, 0xCA, 0x00, 0x00, 0x00]",
    ],
)
def test_the_check_leaves_tags_and_commands_alone(line: str) -> None:
    assert not bare_status_words(line)


def test_card_apdu_holds_the_words() -> None:
    assert bare_status_words(HOME.read_text())
