"""What one audit event costs, in-process: appends per transaction, against one signature.

An audit append is on every card operation's path (DESIGN §3.7): a chained INSERT, the head
UPDATE and, once per transaction, the head's Ed25519 signature and its anchor line. This
measures transactions holding 1, 3 and 10 events on one chain, on SQLite (default) or the
given database, and prints what each further event adds (the slope between 1 and 10 events
per transaction) and what a transaction costs besides its events (the intercept), beside
one Ed25519 signature made with the same key, so the figures read as ratios on any machine.
Both in wall time and in this thread's CPU time: the CPU figures hold steady on a machine
shared with other work, and they are this process's own work (the database server's is
not in them; an fdatasync waits without CPU).

Usage: .venv/bin/python bench/audit_append.py [--database-url URL] [--transactions N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from cardvault.config import Settings
from cardvault.crypto import signing
from cardvault.services.audit import signing_key as audit_key
from cardvault.services.audit import trail as audit
from cardvault.services.system.runtime import Actor, Runtime, keystore_for, open_runtime
from cardvault.store.db import transaction

SIZES = (1, 3, 10)


def _runtime(database_url: str | None) -> Runtime:
    root = Path(tempfile.mkdtemp(prefix="cardvault-bench-audit-"))
    settings = Settings(data_dir=root, database_url=database_url)
    audit_key.create_audit_key(settings.keys_dir, keystore_for(settings).create())
    return open_runtime(settings, migrate=True)


def _per_transaction(
    rt: Runtime, actor: Actor, events: int, transactions: int
) -> tuple[float, float]:
    """Median seconds (wall, CPU) per transaction of ``events`` appends."""
    wall, cpu = [], []
    for _ in range(transactions):
        started, started_cpu = time.perf_counter(), time.thread_time()
        with transaction(rt.db) as session:
            for _ in range(events):
                audit.record(session, rt, actor, action="bench.appended")
        wall.append(time.perf_counter() - started)
        cpu.append(time.thread_time() - started_cpu)
    return statistics.median(wall), statistics.median(cpu)


def _signature(rt: Runtime, runs: int) -> float:
    key = audit_key.audit_private_key(rt)
    samples = []
    for n in range(runs):
        started = time.perf_counter()
        signing.sign_ed25519(key, b"cardvault bench %d" % n)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--transactions", type=int, default=300)
    args = parser.parse_args()
    rt = _runtime(args.database_url)
    actor = Actor.operator("bench")
    try:
        _per_transaction(rt, actor, 3, 30)  # warm up: compiled statements, key, pool
        sign = _signature(rt, 2000)
        print(f"\n{rt.engine.dialect.name}, {args.transactions} transactions per row (medians)")
        print(f"one Ed25519 signature:               {sign * 1e6:8.1f} µs")
        totals = {n: _per_transaction(rt, actor, n, args.transactions) for n in SIZES}
        print(f"{'':36} {'wall':>9} {'CPU':>9}")
        for n, (wall, cpu) in totals.items():
            print(
                f"transaction of {n:2d} events:          {wall * 1e6:8.1f} µs {cpu * 1e6:8.1f} µs"
            )
        for kind, i in (("wall", 0), ("CPU", 1)):
            first, last = totals[SIZES[0]][i], totals[SIZES[-1]][i]
            marginal = (last - first) / (SIZES[-1] - SIZES[0])
            fixed = first - marginal * SIZES[0]
            print(
                f"{kind:>4}: each further event {marginal * 1e6:7.1f} µs ({marginal / sign:4.1f} "
                f"signatures), a transaction besides its events {fixed * 1e6:7.1f} µs "
                f"({fixed / sign:4.1f} signatures)"
            )
    finally:
        rt.close()


if __name__ == "__main__":
    main()
