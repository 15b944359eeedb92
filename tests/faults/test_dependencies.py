"""Redis stopped, and the audit anchor's disk read-only or full, under a running topology
(issue 20)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

import httpx
import pytest
from tests.support.auth import HolderFixture
from tests.support.factories import STRONG_PASSCODE
from tests.support.topology import Journal, Topology, retried, sign, sign_in, signed_in, wait_for

from cardvault.clients.common.api import CardvaultApi, ServiceError

pytestmark = pytest.mark.faults


def _checks(topology: Topology, base_url: str) -> dict[str, object]:
    with httpx.Client(verify=topology.tls(), timeout=5) as http:
        body = http.get(f"{base_url}/readyz").json()
    assert isinstance(body, dict)
    return body


def test_redis_stopped_degrades_without_a_500_and_recovers(
    topology: Topology, make_holders: Callable[[int], list[HolderFixture]]
) -> None:
    holders = make_holders(3)
    journal = Journal.new()
    topology.script("stop-redis")
    url = topology.instance_url(1)
    wait_for(lambda: "redis" in _checks(topology, url)["failing"], 10)  # type: ignore[operator]
    # reported, not failing: the instances stay in the load balancer
    assert topology.ready(url) == 200
    assert topology.ready(topology.url) == 200

    with topology.client() as http:
        api = CardvaultApi(http)
        for h in holders:
            session = sign_in(api, topology.url, h.email, STRONG_PASSCODE, h.code())
            for n in range(3):
                digest = bytes(32 - n) + bytes(n)
                retried(journal, "sign", lambda s=session, d=digest: sign(api, s, d))
    assert journal.count("lost") == 0, "a step failed while Redis was down"
    _rate_limits_count_in_process(topology)

    topology.script("start-redis")
    wait_for(lambda: _checks(topology, url)["failing"] == [], 30)


def _rate_limits_count_in_process(topology: Topology) -> None:
    """An instance (re)started while Redis is down, with a sign-in limit of 2 a minute:
    the third try from one address is refused by the instance's own counter, not a 500."""
    limited = ("--env=CARDVAULT_RATE_LIMITS_ENABLED=true", "--env=CARDVAULT_RATE_LIMIT_SIGNIN=2/1m")
    topology.script("kill", "3")
    topology.script("start", "3", *limited)
    try:
        statuses = []
        with topology.client(topology.instance_url(3)) as http:
            api = CardvaultApi(http)
            for _ in range(3):
                with pytest.raises(ServiceError) as refused:
                    sign_in(api, topology.url, "nobody@example.org", STRONG_PASSCODE, "123456")
                statuses.append(refused.value.status)
        assert statuses[-1] == 429
        assert all(s is not None and s < 500 for s in statuses)
    finally:
        topology.script("kill", "3")
        topology.script("start", "3")


@pytest.mark.parametrize("fault", ["anchor-readonly", "anchor-full"])
def test_anchor_read_only_or_full_fails_card_operations_closed_and_recovers(
    topology: Topology, make_holders: Callable[[int], list[HolderFixture]], fault: str
) -> None:
    if os.geteuid() != 0:
        pytest.skip("remounting the anchor's folder (read-only, or on a full tmpfs) needs root")
    (h,) = make_holders(1)
    journal = Journal.new()
    with topology.client() as http:
        api = CardvaultApi(http)
        session = signed_in(journal, api, topology.url, h)
    topology.script(fault)
    try:
        urls = [topology.instance_url(n) for n in (1, 2, 3)]
        wait_for(lambda: all(topology.ready(u) == 503 for u in urls), 15)
        assert "audit_anchor" in _checks(topology, urls[0])["failing"]  # type: ignore[operator]
        with topology.client(urls[0]) as http, pytest.raises(ServiceError) as refused:
            sign(CardvaultApi(http), session, hashlib.sha256(b"refused").digest())
        assert refused.value.status == 503
        assert refused.value.problem == "audit_anchor_unavailable"
        signed_while_refused = topology.scalar(
            "SELECT count(*) FROM audit_events e JOIN cards c ON c.id = e.card_id "
            "WHERE c.serial = :s AND e.action = 'card.signed'",
            s=h.card.serial,
        )
        assert signed_while_refused == 0, "a signature happened without its anchor"
    finally:
        topology.script("anchor-writable")
    # space (or writing) back: ready again by itself, nothing restarted
    wait_for(lambda: topology.ready(topology.url) == 200, 30)
    with topology.client() as http:
        retried(journal, "sign", lambda: sign(CardvaultApi(http), session, bytes(32)))
    verified = topology.script("cli", "audit", "verify", check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
