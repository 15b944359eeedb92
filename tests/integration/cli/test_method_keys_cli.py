"""``cardvault method add-hr-card`` and ``add-fido2``, the real command in a subprocess."""

from __future__ import annotations

import pytest
from tests.support import factories as f
from tests.support import keys as k
from tests.support.cli import Cli

from cardvault.services.system.runtime import Actor, Runtime

pytestmark = pytest.mark.slow


def test_an_hr_card_is_associated_once_per_organisation(
    cli: Cli, rt: Runtime, operator: Actor
) -> None:
    k.org(rt, operator)
    card = f.active_card(rt, operator)

    added = cli.run("method", "add-hr-card", card.serial, "--org", "org1", "--uid", "04:a2:2b:1a")
    again = cli.run("method", "add-hr-card", card.serial, "--org", "ORG1", "--uid", "04A22B1A")

    assert added.ok().json["identifier"] == "04A22B1A"
    assert added.json["method"] == "hr_card"
    assert again.returncode == 4
    assert again.error["code"] == "already_associated"


def test_registering_a_key_without_one_plugged_in_says_so(
    cli: Cli, rt: Runtime, operator: Actor
) -> None:
    k.org(rt, operator)
    card = f.active_card(rt, operator)

    done = cli.run("method", "add-fido2", card.serial, "--org", "ORG1", "--wait", "1")

    assert done.returncode == 3
    assert done.error["code"] == "fido2_no_key"
    assert "Insert the security key" in done.stderr
