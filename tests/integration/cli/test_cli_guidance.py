"""The CLI tells the operator what they are doing: warnings, checks before work, and prompts
that say why they ask again. The real ``cardvault`` command, at a pseudo-terminal where a
person would type."""

from __future__ import annotations

import json
import socket

import pytest
from sqlalchemy import func, select
from tests.support import factories as f
from tests.support.cli import Cli
from tests.support.terminal import Terminal

from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import AuditEvent, Card, KeySlotInfo, SecurityQuestion

pytestmark = pytest.mark.slow  # every test here runs the real CLI (a second each)


def _count(rt: Runtime, model: type) -> int:
    with rt.db() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _at_terminal(cli: Cli, *args: str) -> Terminal:
    return Terminal.spawn(cli.argv(*args, json_output=False), cli.env())


def test_an_organisation_without_networks_is_created_with_a_warning(cli: Cli) -> None:
    bare = cli.run("org", "create", "BARE", "No Networks Trust").ok()
    assert bare.json["networks"] == []  # stdout is still the JSON answer
    assert "Warning: BARE allows no client networks" in bare.stderr
    assert "nobody can sign in to it from anywhere" in bare.stderr
    assert "cardvault org networks" in bare.stderr

    listed = cli.run("org", "create", "NET", "Networked Trust", "--network", "10.0.0.0/8").ok()
    assert listed.json["networks"] == ["10.0.0.0/8"]
    assert "Warning" not in listed.stderr


def test_issue_refuses_a_short_issuance_passcode_before_making_keys(
    cli: Cli, rt: Runtime, operator: Actor
) -> None:
    f.org(rt, operator)
    uid = f.person(rt, operator, "ORG1")
    events = _count(rt, AuditEvent)
    short = cli.run(
        "card", "issue", "--org", "ORG1", "--user-id", uid, "--passcode-stdin", stdin="abc12\n"
    )
    assert short.returncode == 2
    assert short.error["message"] == "The issuance passcode must be at least 6 characters long."
    assert "Generating" not in short.stderr
    assert (_count(rt, Card), _count(rt, AuditEvent)) == (0, events)


def test_issue_at_a_terminal_asks_again_and_says_why(
    cli: Cli, rt: Runtime, operator: Actor
) -> None:
    f.org(rt, operator)
    uid = f.person(rt, operator, "ORG1")
    term = _at_terminal(cli, "card", "issue", "--org", "ORG1", "--user-id", uid)
    try:
        term.expect("Issuance passcode:")
        term.send("abc")
        assert "at least 6 characters long" in term.expect("Issuance passcode:")
        term.send("issue-me-123")
        term.expect("Issuance passcode (again):")
        term.send("issue-me-321")
        assert "The two issuance passcodes are different" in term.expect("Issuance passcode:")
        term.send("issue-me-123")
        term.expect("Issuance passcode (again):")
        term.send("issue-me-123")
        assert term.wait() == 0
    finally:
        term.kill()
    assert "Generating the card's two key pairs" in term.output
    assert "issue-me-123" not in term.output
    with rt.db() as s:
        card = s.scalars(select(Card)).one()
    assert card.status == "issued"


def test_enrol_at_a_terminal_offers_the_questions_and_says_why_it_asks_again(
    cli: Cli, rt: Runtime, operator: Actor
) -> None:
    f.org(rt, operator)
    issued = f.issued_card(rt, operator, algorithm="ecp256")
    offered = rt.settings.security_questions
    term = _at_terminal(cli, "card", "enrol", issued.serial)
    try:
        assert "for Alice Example" in term.expect("Issuance passcode:")
        term.send(f.ISSUANCE_PASSCODE)
        term.expect("New passcode:")
        term.send("password123")
        assert "too common" in term.expect("New passcode:")
        term.send(f.STRONG_PASSCODE)
        term.expect("New passcode (again):")
        term.send(f.STRONG_PASSCODE)
        shown = term.expect("Security question 1:")
        assert "type the number of one of these, or write your own" in shown
        for number, question in enumerate(offered, start=1):
            assert f"{number}. {question}" in shown
        term.send(str(len(offered) + 1))
        assert f"type a number from 1 to {len(offered)}" in term.expect("Security question 1:")
        term.send("2")
        assert offered[1] in term.expect("Answer 1:")
        term.send("Leeds")
        term.expect("Security question 2:")
        term.send("2")
        assert "same as another one" in term.expect("Security question 2:")
        term.send("Who was my first teacher?")
        term.expect("Answer 2:")
        term.send("  LEEDS ")
        assert "same as another answer" in term.expect("Answer 2:")
        term.send("Mrs Smith")
        term.expect("Security question 3:")
        term.send("5")
        term.expect("Answer 3:")
        term.send(f.STRONG_PASSCODE)
        assert "must not be your passcode" in term.expect("Answer 3:")
        term.send("Hill Top Primary")
        assert term.wait() == 0
    finally:
        term.kill()
    assert f"Card {issued.serial} is enrolled and active." in term.output
    for secret in (f.STRONG_PASSCODE, f.ISSUANCE_PASSCODE, "Mrs Smith", "Hill Top"):
        assert secret not in term.output
    with rt.db() as s:
        card = s.scalar(select(Card).where(Card.serial == issued.serial))
        assert card is not None
        questions = s.scalars(
            select(SecurityQuestion.question)
            .where(SecurityQuestion.card_id == card.id)
            .order_by(SecurityQuestion.position)
        ).all()
        slots = set(s.scalars(select(KeySlotInfo.name).where(KeySlotInfo.card_id == card.id)))
    assert card.status == "active"
    assert questions == [offered[1], "Who was my first teacher?", offered[4]]
    assert slots == {"passcode", "recovery-1-2", "recovery-1-3", "recovery-2-3"}


def test_enrol_without_a_terminal_points_to_stdin_json(
    cli: Cli, rt: Runtime, operator: Actor
) -> None:
    f.org(rt, operator)
    issued = f.issued_card(rt, operator, algorithm="ecp256")
    piped = cli.run("card", "enrol", issued.serial)
    assert piped.returncode == 2
    assert "stdin is not a terminal" in piped.error["message"]
    assert "--stdin-json" in piped.error["remedy"]


def test_json_errors_include_usage_errors(cli: Cli) -> None:
    missing = cli.run("card", "show")
    assert missing.returncode == 2
    assert missing.stdout == ""
    assert missing.error["code"] == "usage"
    assert "Missing argument" in missing.error["message"]
    assert json.loads(cli.run("org", "list").ok().stdout) == []


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again when the block ends


def test_an_unreachable_database_is_a_clear_error_with_its_exit_code(cli: Cli) -> None:
    unreachable = (
        f"postgresql://cardvault:secret-pw@127.0.0.1:{_closed_port()}/x?connect_timeout=2",
        f"sqlite:///{cli.data_dir}/no-such-folder/cardvault.db",
    )
    for url in unreachable:
        out = cli.run("org", "list", CARDVAULT_DATABASE_URL=url)
        assert out.returncode == 8, out.stderr  # EXIT_CODES: unavailable, try again
        assert out.error["code"] == "database_unavailable"
        assert "CARDVAULT_DATABASE_URL" in out.error["remedy"]
        plain = cli.run("org", "list", json_output=False, CARDVAULT_DATABASE_URL=url)
        assert plain.returncode == 8
        assert "Traceback" not in plain.stderr
        assert "The database is not available right now" in plain.stderr
        assert "secret-pw" not in plain.stderr + out.stderr
