"""The PostgreSQL primary stopped and the standby promoted under the instances (issue 20)."""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Callable

import pytest
from sqlalchemy import Connection, text
from tests.support.auth import HolderFixture
from tests.support.topology import Journal, Topology, retried, sign, signed_in, wait_for

from cardvault.clients.agent.state import AgentState
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

    # a request in flight (waiting in the database) when the primary stops: a retryable
    # problem, not a 500, and nothing of it committed
    in_flight = _stop_primary_under_a_waiting_request(topology, session)
    assert isinstance(in_flight, ServiceError), f"the request in flight ended as {in_flight!r}"
    assert (in_flight.status, in_flight.problem) == (503, "database_unavailable")
    assert (in_flight.retry_after or 0) > 0
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
    assert _signatures(topology, first) == 1, "the request in flight left a signature event"

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


def _signatures(topology: Topology, h: HolderFixture) -> object:
    return topology.scalar(
        "SELECT count(*) FROM audit_events e JOIN cards c ON c.id = e.card_id "
        "WHERE c.serial = :s AND e.action = 'card.signed'",
        s=h.card.serial,
    )


def _stop_primary_under_a_waiting_request(
    topology: Topology, session: AgentState
) -> ServiceError | str:
    """Stop the primary while a signature is surely in flight: the test holds a lock that
    makes its audit event wait inside the database, and stops the primary only once
    PostgreSQL shows a backend waiting for it. Returns how the request ended."""
    outcome: list[ServiceError | str] = []

    def request() -> None:
        with topology.client(topology.instance_url(1)) as http:
            try:
                sign(CardvaultApi(http), session, hashlib.sha256(b"in flight").digest())
                outcome.append("signed")
            except ServiceError as exc:
                outcome.append(exc)

    rt = topology.runtime()
    holder = rt.engine.connect()
    try:
        holder.execute(text("LOCK TABLE audit_events IN SHARE ROW EXCLUSIVE MODE"))
        waiter = threading.Thread(target=request)
        waiter.start()
        wait_for(lambda: _waiting_for_a_lock(holder) > 0, 15)
        topology.script("stop-primary")
        waiter.join(60)
    finally:
        with contextlib.suppress(Exception):
            holder.invalidate()
        rt.engine.dispose()
    assert not waiter.is_alive(), "the request in flight never ended"
    (ended,) = outcome
    return ended


def _waiting_for_a_lock(conn: Connection) -> int:
    return int(
        conn.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
        ).scalar_one()
    )
