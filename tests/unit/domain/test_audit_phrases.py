"""Audit actions in words: every action the code records has a phrase, and the fallback holds.

The catalogue is checked against the source: every action code written in ``src/`` (an
``action=`` literal, or a literal of an audit namespace passed to a helper that records it)
must have a phrase, so a new action without one fails here rather than reaching an RA as a
bare code; and a phrase whose action is no longer recorded anywhere fails too.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from cardvault.domain import audit_phrases
from cardvault.domain.audit_phrases import ACTIONS, VARIANTS, describe, fallback
from cardvault.domain.lockout import ATTEMPTS_LOCK_REASON

SRC = Path(audit_phrases.__file__).resolve().parents[1]
#: clients never record audit events; migrations name columns ("cards.id"), not actions;
#: the catalogue itself would find its own keys
SKIPPED = ("clients", "store/migrations", "domain/audit_phrases.py")
ACTION_SHAPE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")


def _modules() -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        if not relative.startswith(SKIPPED):
            yield path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _action_keywords(tree: ast.Module) -> Iterator[ast.expr]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield from (k.value for k in node.keywords if k.arg == "action")


def _literals(node: ast.AST) -> Iterator[str]:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            yield sub.value


def recorded_actions() -> dict[str, str]:
    """Every action code written in the source, with one place it is written."""
    found: dict[str, str] = {}
    modules = list(_modules())
    for path, tree in modules:
        for value in _action_keywords(tree):
            for text in _literals(value):
                if ACTION_SHAPE.fullmatch(text):
                    found.setdefault(text, path.name)
    namespaces = {a.split(".")[0] for a in found} | {a.split(".")[0] for a in ACTIONS}
    for path, tree in modules:
        for text in _literals(tree):
            if ACTION_SHAPE.fullmatch(text) and text.split(".")[0] in namespaces:
                found.setdefault(text, path.name)
    return found


def test_the_source_scan_finds_actions_recorded_directly_and_through_helpers() -> None:
    found = recorded_actions()
    assert found["card.unlocked"] == "ra_cards.py"  # action="card.unlocked"
    assert found["recovery.answers"] == "recovery.py"  # _audit(..., "recovery.answers", ...)
    assert found["auth.passcode"] == "authentication.py"  # lockout.passcode_wrong(action=…)
    assert found["piv.puk_changed"] == "trail.py"  # a table of actions
    assert len(found) >= 60


def test_every_action_the_code_records_has_a_phrase() -> None:
    missing = sorted(
        f"{a} ({where})" for a, where in recorded_actions().items() if a not in ACTIONS
    )
    assert missing == [], "add these actions to cardvault.domain.audit_phrases.ACTIONS"


def test_every_phrase_belongs_to_an_action_the_code_records() -> None:
    stale = sorted(set(ACTIONS) - set(recorded_actions()))
    assert stale == [], "these phrases name actions that nothing records any more"


def test_actions_are_never_built_at_run_time() -> None:
    """An f-string or concatenation would hide the action from the catalogue's test."""
    built = [
        f"{path.name}:{value.lineno}"
        for path, tree in _modules()
        for value in _action_keywords(tree)
        if isinstance(value, ast.JoinedStr | ast.BinOp)
    ]
    assert built == []


def test_phrases_are_sentences_without_codes() -> None:
    texts = [p.success for p in ACTIONS.values()] + [
        p.failure for p in ACTIONS.values() if p.failure
    ]
    texts += [t for v in VARIANTS.values() for t in v.phrases.values()]
    for text in texts:
        assert text[0].isupper(), text
        assert not text.endswith("."), text
        assert "_" not in text, text
        assert not re.search(r"\w\.\w", text), text
    assert set(VARIANTS) <= set(ACTIONS)


@pytest.mark.parametrize(
    ("action", "outcome", "reason", "details", "expected"),
    [
        ("card.revoked", "success", "lost", {}, "Card revoked"),
        ("auth.passcode", "success", None, {}, "Passcode accepted at sign-in"),
        ("auth.passcode", "failure", "incorrect passcode", {}, "Wrong passcode at sign-in"),
        ("card.issued", "failure", None, {}, "Card issued"),  # no failure phrase: the success one
        ("auth.second_factor", "success", None, {"method": "push"}, "Signed in with push"),
        (
            "auth.second_factor",
            "success",
            None,
            {"method": "totp"},
            "Signed in with an authenticator code",
        ),
        ("auth.second_factor", "success", None, {"method": "new"}, "Signed in"),
        (
            "auth.second_factor",
            "failure",
            "wrong code",
            {"method": "totp"},
            "Second sign-in step failed",
        ),
        ("card.locked", "success", ATTEMPTS_LOCK_REASON, {}, "Card locked: 3 wrong passcodes"),
        ("card.locked", "success", "lost on the bus", {}, "Card locked"),
        ("method.added", "success", None, {"method": "fido2"}, "Security key registered"),
        ("method.removed", "success", None, {"method": "ad_account"}, "Windows account removed"),
    ],
)
def test_describe(
    action: str, outcome: str, reason: str | None, details: dict[str, str], expected: str
) -> None:
    assert describe(action, outcome, reason=reason, details=details) == expected


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("card.new_thing", "Card: new thing"),
        ("gateway.dropped", "Gateway: dropped"),
        ("device.pair.passcode_retry", "Device: pair passcode retry"),
        ("lonely", "Lonely"),
        ("", "Event"),
    ],
)
def test_an_action_without_a_phrase_reads_as_its_code_made_readable(
    action: str, expected: str
) -> None:
    assert action not in ACTIONS
    assert fallback(action) == expected
    assert describe(action, "failure", reason="x", details={"method": "push"}) == expected
