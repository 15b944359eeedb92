"""A push sign-in through HAProxy while Redis is stopped, and after it is back (issue 20):
the paired phone (the authenticator app's own client) holds its event stream to one
instance, the agent's requests reach any instance, and Redis carries the push between them."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pyotp
import pytest
from tests.support.app_phone import paired
from tests.support.auth import HolderFixture
from tests.support.topology import Topology, push_sign_in, wait_for

from cardvault.clients.agent import core
from cardvault.services.system.runtime import Actor

pytestmark = pytest.mark.faults


def _failing(topology: Topology) -> list[str]:
    with httpx.Client(verify=topology.tls(), timeout=5) as http:
        failing = http.get(f"{topology.instance_url(1)}/readyz").json()["failing"]
    assert isinstance(failing, list)
    return [str(name) for name in failing]


def test_push_degrades_to_the_code_while_redis_is_down_and_comes_back_without_a_restart(
    topology: Topology, make_holders: Callable[[int], list[HolderFixture]]
) -> None:
    (h,) = make_holders(1)
    rt = topology.runtime()
    try:
        with paired(
            topology.url,
            rt,
            Actor.operator("fault-tier"),
            serial=h.card.serial,
            org_code="FLT",
            name="fault-tier phone",
            verify=topology.tls(),
        ) as phone:
            topology.script("stop-redis")
            try:
                wait_for(lambda: "redis" in _failing(topology), 10)
                codes: list[str] = []
                notes: list[str] = []

                def app_code() -> str:
                    codes.append(pyotp.TOTP(phone.state.totp_secret).now())
                    return codes[-1]

                down = push_sign_in(topology, h.email, phone, notes, app_code)
                assert down.token, "no card session while Redis was down"
                assert codes, "the agent did not fall back to the one-time code"
                assert notes == [core.PHONE_UNREACHABLE], notes
            finally:
                topology.script("start-redis")
            wait_for(lambda: _failing(topology) == [], 30)

            phone.listen()
            notes = []
            back = push_sign_in(topology, h.email, phone, notes, _no_code)
            phone.finish()
            assert back.token
            assert notes == []
            assert any("Answered approve: approved" in s for s in phone.said), phone.said
    finally:
        rt.engine.dispose()


def _no_code() -> str:
    raise AssertionError("with Redis back the phone's push should have done it")
