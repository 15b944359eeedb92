"""Changing an organisation's networks from two instances at once loses nothing (SQLite and
PostgreSQL): each change is applied to the row as the transaction holds it."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from tests.support import factories as f

from cardvault.config import Settings
from cardvault.services.audit import trail as audit
from cardvault.services.networks import changes as org_networks
from cardvault.services.system.runtime import Actor, Runtime, open_runtime


def test_concurrent_additions_on_two_instances_are_all_kept(
    rt: Runtime, settings: Settings, operator: Actor
) -> None:
    f.org(rt, operator, networks=["10.0.0.0/8"])
    other = open_runtime(settings)
    added = [f"192.0.2.{n}/32" for n in range(12)]
    barrier = threading.Barrier(len(added))

    def add(n: int) -> None:
        instance = rt if n % 2 else other
        barrier.wait()
        change = org_networks.NetworksChange(add=(added[n],))
        org_networks.change(instance, operator, change, code="ORG1")

    try:
        with ThreadPoolExecutor(max_workers=len(added)) as pool:
            list(pool.map(add, range(len(added))))
    finally:
        other.close()
    kept = org_networks.show(rt, "ORG1").networks
    assert kept[0] == "10.0.0.0/8"
    assert sorted(kept[1:]) == sorted(added)
    with rt.db() as s:
        org_chain = next(chain for chain, label in audit.chains(s) if label == "ORG1")
    assert audit.verify(rt, org_chain) == 1 + len(added)  # created, then one per change
