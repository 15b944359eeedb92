"""Audit actions in words: every action in the catalogue has a phrase and is recorded, and
no action code is written anywhere but in the catalogue.

``AuditAction`` is the one list of action codes: recording takes a member (mypy holds every
caller to it), each member must have a phrase, each must be recorded somewhere in ``src/``
(found by its name), and a bare action code written elsewhere fails here, so a new action
cannot bypass the catalogue or reach an RA as a bare code.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from cardvault.domain import audit_phrases
from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.audit_phrases import ACTIONS, VARIANTS, describe, fallback
from cardvault.domain.lockout import ATTEMPTS_LOCK_REASON

SRC = Path(audit_phrases.__file__).resolve().parents[1]
#: clients never record audit events; migrations name columns ("cards.id"), not actions;
#: the catalogue and its phrases name every member themselves
SKIPPED = ("clients", "store/migrations", "domain/audit_phrases.py", "domain/audit_actions.py")
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


def recorded_actions() -> dict[str, str]:
    """Every ``AuditAction.NAME`` written in the source, with one place it is written."""
    found: dict[str, str] = {}
    for path, tree in _modules():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "AuditAction"
            ):
                found.setdefault(node.attr, path.name)
    return found


def bare_action_codes() -> list[str]:
    """String literals shaped like an action code of a catalogue namespace."""
    namespaces = {a.namespace for a in AuditAction}
    return [
        f"{path.name}:{node.lineno}: {node.value}"
        for path, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and ACTION_SHAPE.fullmatch(node.value)
        and node.value.split(".")[0] in namespaces
    ]


def test_the_source_scan_finds_actions_recorded_directly_and_through_helpers() -> None:
    found = recorded_actions()
    assert found["CARD_UNLOCKED"] == "cards.py"  # action=AuditAction.CARD_UNLOCKED
    assert found["RECOVERY_ANSWERS"] == "reset.py"  # _audit(..., AuditAction.RECOVERY_ANSWERS)
    assert found["AUTH_PASSCODE"] == "engine.py"  # lockout.passcode_wrong(action=…)
    assert found["PIV_PUK_CHANGED"] == "trail.py"  # a table of actions
    assert len(found) >= 60


def test_every_action_has_a_phrase() -> None:
    missing = sorted(a.value for a in AuditAction if a not in ACTIONS)
    assert missing == [], "add these actions to cardvault.domain.audit_phrases.ACTIONS"


def test_every_action_in_the_catalogue_is_recorded() -> None:
    stale = sorted(a.name for a in AuditAction if a.name not in recorded_actions())
    assert stale == [], "nothing records these actions any more: remove them"


def test_action_codes_are_written_only_in_the_catalogue() -> None:
    assert bare_action_codes() == [], "use cardvault.domain.audit_actions.AuditAction"


def test_actions_are_never_built_at_run_time() -> None:
    """An f-string or concatenation would hide the action from the catalogue's test."""
    built = [
        f"{path.name}:{value.lineno}"
        for path, tree in _modules()
        for value in _action_keywords(tree)
        if isinstance(value, ast.JoinedStr | ast.BinOp)
    ]
    assert built == []


def test_stored_codes_keep_their_values() -> None:
    """The codes are hashed into the audit chain: a renamed member keeps its stored code."""
    assert AuditAction.SECURITY_KEY_SIGN_IN == "fido2.sign_in"
    assert AuditAction.SECURITY_KEY_REGISTRATION == "method.fido2_registration"
    assert AuditAction.of("card.revoked") is AuditAction.CARD_REVOKED
    assert AuditAction.of("gateway.dropped") is None


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
