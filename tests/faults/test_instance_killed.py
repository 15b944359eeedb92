"""kill -9 of one instance during a stream of sign-ins and signatures (issue 20)."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable

import pytest
from sqlalchemy import bindparam, text
from tests.support.auth import HolderFixture
from tests.support.topology import Journal, Topology, retried, sign, sign_in, signed_in

from cardvault.clients.common.api import CardvaultApi, ServiceError

pytestmark = pytest.mark.faults

HOLDERS = 6
WRONG_PASSCODES = 2


def _holder_stream(
    topology: Topology, journal: Journal, h: HolderFixture, stop: threading.Event
) -> None:
    """Sign in, then sign challenges until told to stop, retrying what the load balancer
    lost."""
    with topology.client() as http:
        api = CardvaultApi(http)
        session = signed_in(journal, api, topology.url, h)
        n = 0
        while not stop.is_set():
            n += 1
            digest = hashlib.sha256(f"{h.email}/{n}".encode()).digest()
            retried(journal, "sign", lambda d=digest: sign(api, session, d))
            time.sleep(0.05)


def _wrong_passcodes(topology: Topology, journal: Journal, h: HolderFixture) -> list[int]:
    """Wrong passcodes, one try each (a lost one is not retried: it may have counted)."""
    statuses = []
    with topology.client() as http:
        api = CardvaultApi(http)
        for _ in range(WRONG_PASSCODES):
            try:
                retried(
                    journal,
                    "wrong",
                    lambda: sign_in(api, topology.url, h.email, "not the passcode 1x", h.code()),
                    tries=1,
                )
            except ServiceError as exc:
                statuses.append(exc.status or 0)
            time.sleep(0.3)
    return statuses


def _in_threads(
    jobs: list[Callable[[], object]],
) -> tuple[list[threading.Thread], list[BaseException]]:
    errors: list[BaseException] = []

    def run(job: Callable[[], object]) -> None:
        try:
            job()
        except BaseException as exc:  # collected and reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    return threads, errors


def test_kill_9_of_one_instance_loses_no_step_and_no_audit_event(
    topology: Topology, make_holders: Callable[[int], list[HolderFixture]]
) -> None:
    holders = make_holders(HOLDERS + 1)
    locked_out, streams = holders[0], holders[1:]
    journal = Journal.new()
    wrong: list[int] = []
    stop = threading.Event()
    jobs: list[Callable[[], object]] = [
        (lambda h=h: _holder_stream(topology, journal, h, stop)) for h in streams
    ]
    jobs.append(lambda: wrong.extend(_wrong_passcodes(topology, journal, locked_out)))
    threads, errors = _in_threads(jobs)
    deadline = time.monotonic() + 60
    while len(journal.ids("sign", "ok")) < 2 * HOLDERS and time.monotonic() < deadline:
        time.sleep(0.1)
    before = len(journal.ids("sign", "ok"))
    topology.script("kill", "2")
    time.sleep(4)
    stop.set()
    for t in threads:
        t.join(timeout=120)

    assert errors == [], f"a step failed although retried: {errors!r}"
    # the load balancer routed around the dead instance; the retries were few
    assert topology.ready(topology.instance_url(2)) == 0
    assert topology.ready(topology.url) == 200
    assert journal.count("lost") <= 2 * HOLDERS

    # every answered signature has exactly one audit event; a lost attempt at most one
    signed = _events_by_request(topology, "card.signed", streams)
    ok, lost = journal.ids("sign", "ok"), journal.ids("sign", "lost")
    assert before > 0
    assert len(ok) > before + HOLDERS, "the stream did not run across the kill"
    assert all(signed.get(rid) == 1 for rid in ok), "an answered signature left no event"
    assert all(signed.get(rid, 0) <= 1 for rid in lost)
    assert set(signed) <= ok | lost, "an event belongs to no attempt"

    # the lockout count is exactly the wrong passcodes the service saw
    refused = sum(1 for s in wrong if s == 401)
    lost_wrong = len(journal.ids("wrong", "lost"))
    failed = topology.scalar(
        "SELECT failed_attempts FROM cards WHERE serial = :s", s=locked_out.card.serial
    )
    assert isinstance(failed, int)
    assert refused <= failed <= refused + lost_wrong
    assert failed == WRONG_PASSCODES or lost_wrong

    # nothing is missing from or doubled in the chains: the audit trail verifies
    verified = topology.script("cli", "audit", "verify", check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr

    # the instance comes back and the load balancer uses it again
    topology.script("start", "2")
    assert topology.ready(topology.instance_url(2)) == 200


def _events_by_request(
    topology: Topology, action: str, holders: list[HolderFixture]
) -> dict[str, int]:
    """How many ``action`` events each request id wrote on these holders' cards."""
    rt = topology.runtime()
    serials = [h.card.serial for h in holders]
    query = text(
        "SELECT e.request_id, count(*) FROM audit_events e JOIN cards c ON c.id = e.card_id "
        "WHERE e.action = :a AND c.serial IN :serials GROUP BY e.request_id"
    ).bindparams(bindparam("serials", expanding=True))
    try:
        with rt.engine.connect() as conn:
            rows = conn.execute(query, {"a": action, "serials": serials}).all()
    finally:
        rt.engine.dispose()
    return {str(rid): int(n) for rid, n in rows}
