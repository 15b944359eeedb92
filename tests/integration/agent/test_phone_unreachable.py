"""The agent against the real service over HTTP when the holder's paired phone holds no
connection (switched off, or the push channel down): it says so and asks for the app's code."""

from __future__ import annotations

import httpx
from tests.support import auth as a
from tests.support import factories as f
from tests.support import phones

from cardvault.clients.agent import core
from cardvault.clients.common.api import CardvaultApi
from cardvault.services.system.runtime import Actor, Runtime


def test_a_paired_phone_that_cannot_be_reached_is_said_and_its_code_opens_the_card(
    rt: Runtime, operator: Actor, live_url: str
) -> None:
    a.local_network(rt, operator)
    a.open_org(rt, operator)
    card = f.active_card(rt, operator, "ORG1", email="offline@example.org")
    phone = phones.pair(rt, operator, card.serial)
    asked: list[str] = []
    notes: list[str] = []

    def app_code(question: str) -> str:
        asked.append(question)
        return phone.code()

    def no_push(_number: str) -> None:
        raise AssertionError("the agent pushed to a phone it was told is not connected")

    data = core.LoginInput(
        identifier_kind="email", identifier="offline@example.org", passcode=f.STRONG_PASSCODE
    )
    with httpx.Client(base_url=live_url, timeout=30) as http:
        state = core.login(
            CardvaultApi(http),
            "test",
            data,
            totp=None,
            ask_code=app_code,
            show_number=no_push,
            note=notes.append,
        )
    assert state.token
    assert notes == [core.PHONE_UNREACHABLE]
    assert asked == ["Code from your authenticator app"]
