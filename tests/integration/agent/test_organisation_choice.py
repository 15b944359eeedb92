"""The identity agent signs in to one of several organisations (issue 21), against the real
service over HTTP: it lists the organisations and asks, or takes ``--organisation``; the
session is that organisation's, with its second factors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from tests.integration.agent.test_key_and_hr_card_login import agent
from tests.support import auth as a
from tests.support import factories as f
from tests.support.live_server import serve_runtime

from cardvault.services.cards import methods
from cardvault.services.directory import registry as directory
from cardvault.services.system.runtime import Actor, Runtime

EMAIL = "two.orgs@example.org"


@pytest.fixture
def url(rt: Runtime) -> Iterator[str]:
    with serve_runtime(rt) as base:
        yield base


@pytest.fixture
def app_secret(rt: Runtime, operator: Actor) -> str:
    """A holder of ORG1 and ORG2 whose authenticator app is added in ORG2 only."""
    f.org(rt, operator, "ORG1", networks=a.LOOPBACK)
    f.org(rt, operator, "ORG2", networks=a.LOOPBACK, policy={"second_factors": ["totp"]})
    card = f.active_card(rt, operator, email=EMAIL)
    directory.add_membership(rt, operator, card.user_id, "ORG2")
    return methods.add_totp(rt, operator, serial=card.serial, org_code="ORG2").secret


def test_the_agent_lists_the_organisations_and_asks(
    url: str, tmp_path: Path, app_secret: str
) -> None:
    code = pyotp.TOTP(app_secret).now()
    done = agent(
        url,
        tmp_path,
        "--json",
        "login",
        "--email",
        EMAIL,
        "--passcode-stdin",
        "--totp",
        code,
        stdin=f"{f.STRONG_PASSCODE}\nORG2\n",
    )

    assert done.returncode == 0, done.stderr
    assert "You can sign in to several organisations:" in done.stderr
    assert "ORG1  Organisation ORG1" in done.stderr
    assert json.loads(done.stdout)["organisation"] == "ORG2"


def test_the_agent_takes_the_organisation_from_its_option(
    url: str, tmp_path: Path, app_secret: str
) -> None:
    done = agent(
        url,
        tmp_path,
        "--json",
        "login",
        "--email",
        EMAIL,
        "--organisation",
        "ORG2",
        "--passcode-stdin",
        "--totp",
        pyotp.TOTP(app_secret).now(),
        stdin=f"{f.STRONG_PASSCODE}\n",
    )

    assert done.returncode == 0, done.stderr
    assert "several organisations" not in done.stderr
    assert json.loads(done.stdout)["organisation"] == "ORG2"


def test_without_an_answer_the_agent_says_to_give_the_option(
    url: str, tmp_path: Path, app_secret: str
) -> None:
    done = agent(
        url,
        tmp_path,
        "--json",
        "login",
        "--email",
        EMAIL,
        "--passcode-stdin",
        stdin=f"{f.STRONG_PASSCODE}\n",
    )

    assert done.returncode != 0
    assert "--organisation" in done.stdout + done.stderr
