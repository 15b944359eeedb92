"""``cardvault-agent`` for the PC/SC channel against a live service: RA sign-in with a role,
role listing and switching, and the connector refusing what a session may not do."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support import auth as a
from tests.support import factories as f
from tests.support.live_server import live_server
from tests.support.pcsc_stack import BIN, run

from cardvault.services.directory import registry as directory
from cardvault.services.system.runtime import Actor, Runtime


@pytest.fixture
def server(rt: Runtime) -> Iterator[str]:
    with live_server(rt) as url:
        yield url


def agent(server: str, state: Path, *args: str, stdin: str = "", check: bool = True) -> str:
    base = [str(BIN / "cardvault-agent"), "--server", server, "--state-dir", str(state)]
    return run(*base, *args, stdin=stdin, check=check)


def login(server: str, state: Path, who: a.HolderFixture, *extra: str) -> str:
    return agent(server, state, "login", "--email", who.email, "--passcode-stdin",
                 "--totp", who.code(), *extra, stdin=f.STRONG_PASSCODE + "\n")  # fmt: skip


def test_an_ra_signs_in_with_a_role_of_the_organisation_chosen(
    rt: Runtime, operator: Actor, server: str, tmp_path: Path
) -> None:
    a.open_org(rt, operator)
    a.open_org(rt, operator, "ORG2")
    ra = a.holder(rt, operator)
    for org, role in (("ORG1", "ra_agent"), ("ORG2", "ra_manager")):
        directory.grant_role(rt, operator, user_id=ra.card.user_id, org_code=org, role=role)
    out = login(server, tmp_path, ra, "--ra", "--organisation", "ORG1", "--role", "ra_agent")
    assert "acting as ra_agent in ORG1" in out
    # the session is ORG1's (chosen at sign-in): ORG2's role needs a sign-in to ORG2
    listing = agent(server, tmp_path, "role")
    assert "ORG1 ra_agent" in listing
    assert "ORG2" not in listing
    refused = agent(server, tmp_path, "role", "ORG2", "ra_manager", check=False)
    assert "You do not have that RA role" in refused
    assert "Acting as ra_agent in ORG1" in agent(server, tmp_path, "role", "ORG1", "ra_agent")


def test_the_connector_refuses_what_the_session_may_not_do(
    rt: Runtime, operator: Actor, server: str, tmp_path: Path
) -> None:
    a.open_org(rt, operator)
    holder = a.holder(rt, operator)
    login(server, tmp_path / "holder", holder)
    out = agent(server, tmp_path / "holder", "connector", "--issue-for", "555000000001",
                "--org", "ORG1", check=False)  # fmt: skip
    assert "Issuing a card needs an RA session" in out
    out = agent(server, tmp_path / "holder", "connector", check=False)
    assert "Your card has no card PIN yet" in out
    assert "Cannot prompt for the card PIN: use --pin-stdin" in out
    out = agent(server, tmp_path / "holder", "connector", "--card", "CV0000000000", check=False)
    assert "cannot be used in this session" in out


def test_the_holder_sets_and_changes_the_card_pin_with_the_agent(
    rt: Runtime, operator: Actor, server: str, tmp_path: Path
) -> None:
    a.open_org(rt, operator)
    holder = a.holder(rt, operator)
    login(server, tmp_path, holder)
    serial = holder.card.serial
    assert "has no card PIN yet" in agent(server, tmp_path, "pin", "status")
    weak = agent(server, tmp_path, "pin", "set", "--pin-stdin", stdin="654321\n", check=False)
    assert "straight up or down" in weak
    directory.update_policy(rt, operator, "ORG1", {"card_pin_min_length": 8})
    short = agent(server, tmp_path, "pin", "set", "--pin-stdin", stdin="2718281\n", check=False)
    assert "Your organisation asks for a card PIN of at least 8 digits" in short
    # the connector's first start asks for the PIN in the organisation's words
    prompt = agent(server, tmp_path, "connector", check=False)
    assert "Your card has no card PIN yet: choose one (8 digits)." in prompt
    out = agent(server, tmp_path, "pin", "set", "--pin-stdin", stdin="27182818\n")
    assert f"Card PIN of card {serial} set." in out
    assert "(3 tries left)" in agent(server, tmp_path, "pin", "status")
    wrong = agent(server, tmp_path, "pin", "change", "--pin-stdin",
                  stdin="11112222\n31415926\n", check=False)  # fmt: skip
    assert "That is not your current card PIN." in wrong
    short = agent(server, tmp_path, "pin", "change", "--pin-stdin",
                  stdin="27182818\n3141592\n", check=False)  # fmt: skip
    assert "at least 8 digits" in short
    assert "(2 tries left)" in agent(server, tmp_path, "pin", "status")
    out = agent(server, tmp_path, "pin", "change", "--pin-stdin", stdin="27182818\n31415926\n")
    assert f"Card PIN of card {serial} changed." in out
    assert "(3 tries left)" in agent(server, tmp_path, "pin", "status")


def test_a_role_needs_an_ra_sign_in(
    rt: Runtime, operator: Actor, server: str, tmp_path: Path
) -> None:
    a.open_org(rt, operator)
    holder = a.holder(rt, operator)
    out = agent(server, tmp_path, "login", "--email", holder.email, "--passcode-stdin",
                "--role", "ra_agent", stdin="x\n", check=False)  # fmt: skip
    assert "--role needs --ra and --organisation" in out
    login(server, tmp_path, holder)
    assert "RA roles need an RA session" in agent(
        server, tmp_path, "role", "ORG1", "ra_agent", check=False
    )
