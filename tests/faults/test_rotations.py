"""Every key rotated while sign-ins and signatures run through HAProxy (issue 20): the master
key (its progress shown), a transport key added and the old one retired, the audit signing
key and the issuing CA. No step fails, every card opens afterwards, the audit trail verifies."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from tests.support.auth import HolderFixture
from tests.support.factories import STRONG_PASSCODE
from tests.support.topology import (
    Journal,
    Topology,
    in_threads,
    retried,
    sign,
    sign_in,
    signed_in,
    signing_stream,
)

from cardvault.clients.common.api import CardvaultApi

pytestmark = pytest.mark.faults

HOLDERS = 3
FRESH_SIGN_INS = 6


def _fresh_sign_ins(
    topology: Topology, journal: Journal, pool: list[HolderFixture], stop: threading.Event
) -> None:
    """One holder after another signs in with a new client (so the JWKS is fetched again)
    and signs once: a sign-in runs through each rotation. One each, since a one-time code
    counts once."""
    with topology.client() as http:
        for h in pool:
            if stop.is_set():
                return
            api = CardvaultApi(http)
            session = signed_in(journal, api, topology.url, h)
            retried(journal, "sign", lambda a=api, s=session: sign(a, s, bytes(32)))
            time.sleep(1.0)


def _cli(topology: Topology, *args: str) -> tuple[Any, str]:
    """``cardvault --json ARGS`` on the topology: its JSON answer and its stderr."""
    done = topology.script("cli", "--json", *args)
    return json.loads(done.stdout), done.stderr


def _preferred_transport_kid(topology: Topology) -> str:
    """The kid cardvault's own clients seal to, as they find it: in the JWKS."""
    with topology.client() as http:
        return str(CardvaultApi(http).transport_key()["kid"])


def test_every_key_rotates_under_load_and_every_card_still_opens(
    topology: Topology, make_holders: Callable[[int], list[HolderFixture]]
) -> None:
    timings = [("start", time.monotonic())]
    holders = make_holders(HOLDERS + FRESH_SIGN_INS)
    timings.append(("holders made", time.monotonic()))
    streams, pool = holders[:HOLDERS], holders[HOLDERS:]
    journal = Journal.new()
    stop = threading.Event()
    jobs: list[Callable[[], object]] = [
        (lambda h=h: signing_stream(topology, journal, h, stop)) for h in streams
    ]
    jobs.append(lambda: _fresh_sign_ins(topology, journal, pool, stop))
    threads, errors = in_threads(jobs)
    try:
        wait_until = time.monotonic() + 60
        while len(journal.ids("sign", "ok")) < HOLDERS and time.monotonic() < wait_until:
            time.sleep(0.1)
        before = len(journal.ids("sign", "ok"))

        timings.append(("stream running", time.monotonic()))
        master, progress = _cli(topology, "keys", "rotate-master")
        timings.append(("master key rotated", time.monotonic()))
        old_kid = _preferred_transport_kid(topology)
        added, _ = _cli(topology, "keys", "transport-add")
        time.sleep(2.5)  # every instance re-reads the key folder within a second
        _cli(topology, "keys", "transport-retire", old_kid)
        _cli(topology, "keys", "rotate-audit")
        ca, _ = _cli(topology, "ca", "rotate", "--common-name", "cardvault fault tier CA 2")
        timings.append(("transport, audit and CA rotated", time.monotonic()))
        time.sleep(3)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=120)

    assert errors == [], f"a step failed although retried: {errors!r}"
    assert journal.count("refused") == 0
    assert len(journal.ids("sign", "ok")) > before + HOLDERS, "the stream did not run across"
    assert len(journal.ids("signin", "ok")) >= HOLDERS + 4, "too few sign-ins ran across"
    print(f"attempts lost and retried: {journal.count('lost')}")
    print(f"rotate-master progress (stderr):\n{progress}")
    assert master["resealed"] > 0
    assert "re-sealed of" in progress, "the master-key rotation showed no progress"
    assert master["to_version"] == master["from_versions"][-1] + 1
    assert _preferred_transport_kid(topology) == added["kid"]
    assert ca["new_key_id"] != ca["old_key_id"]

    # every card opens afterwards: a sign-in (its key slots under the new master key) and a
    # signature, through the load balancer
    checks, failed = in_threads([(lambda h=h: _opens(topology, journal, h)) for h in holders])
    for t in checks:
        t.join(timeout=120)
    assert failed == [], f"a card did not open after the rotations: {failed!r}"
    assert journal.count("refused") == 0
    timings.append(("cards opened", time.monotonic()))

    verified = topology.script("cli", "audit", "verify", check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    timings.append(("audit verified", time.monotonic()))
    print(" · ".join(f"{what} +{at - timings[0][1]:.1f} s" for what, at in timings[1:]))


def _opens(topology: Topology, journal: Journal, h: HolderFixture) -> None:
    """A sign-in with the next step's one-time code (this step's may be used) and a
    signature."""
    with topology.client() as http:
        api = CardvaultApi(http)
        code = h.code(time.time() + 30)
        session = retried(
            journal, "after", lambda: sign_in(api, topology.url, h.email, STRONG_PASSCODE, code)
        )
        retried(journal, "after", lambda: sign(api, session, bytes(32)))
