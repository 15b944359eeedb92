"""The PostgreSQL primary stopped and the standby promoted under the instances (issue 20)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from tests.support.auth import HolderFixture
from tests.support.topology import Journal, Topology, retried, sign, signed_in, wait_for

from cardvault.clients.common.api import CardvaultApi, ServiceError

pytestmark = pytest.mark.faults


def _pids(topology: Topology) -> list[str]:
    return [(topology.state / "run" / f"instance-{n}.pid").read_text() for n in (1, 2, 3)]


def test_promoted_standby_takes_over_without_restarting_an_instance(
    topology: Topology, make_holders: Callable[[int], list[HolderFixture]]
) -> None:
    first, second = make_holders(2)
    journal = Journal.new()
    pids = _pids(topology)
    with topology.client() as http:
        api = CardvaultApi(http)
        session = signed_in(journal, api, topology.url, first)
        retried(journal, "sign", lambda: sign(api, session, hashlib.sha256(b"1").digest()))
    committed = journal.ids("sign", "ok")

    topology.script("stop-primary")
    urls = [topology.instance_url(n) for n in (1, 2, 3)]
    wait_for(lambda: all(topology.ready(u) == 503 for u in urls), 15)

    # what reaches an instance meanwhile fails with a retryable problem, not a 500
    with topology.client(topology.instance_url(1)) as http:
        direct = CardvaultApi(http)
        with pytest.raises(ServiceError) as refused:
            sign(direct, session, hashlib.sha256(b"during").digest())
    assert refused.value.status == 503
    assert refused.value.problem == "database_unavailable"
    assert (refused.value.retry_after or 0) > 0

    topology.script("promote")
    took = wait_for(lambda: all(topology.ready(u) == 200 for u in urls), 30)
    assert took < 30
    assert _pids(topology) == pids, "an instance was restarted"

    # nothing committed before the failover is lost: the session and its signature's event
    with topology.client() as http:
        api = CardvaultApi(http)
        # the card session opened before the failover is still there
        retried(journal, "sign", lambda: sign(api, session, hashlib.sha256(b"1").digest()))
        fresh = signed_in(journal, api, topology.url, second)
        retried(journal, "sign", lambda: sign(api, fresh, hashlib.sha256(b"2").digest()))
    (rid,) = committed
    assert (
        topology.scalar(
            "SELECT count(*) FROM audit_events WHERE request_id = :r AND action = 'card.signed'",
            r=rid,
        )
        == 1
    )
    verified = topology.script("cli", "audit", "verify", check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
