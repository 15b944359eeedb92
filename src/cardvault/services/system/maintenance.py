"""Housekeeping that makes expiry real: expired sessions, transactions and nonces deleted,
and holders told when their certificates are about to expire.

The web app runs ``run_once`` every ``INTERVAL_SECONDS`` in a background thread; a failure
is logged and retried on the next round (nothing here is needed for correctness of a single
request, which checks expiry itself).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from cardvault.services.directory import erasure
from cardvault.services.pki import expiry
from cardvault.services.security_keys import keys as security_keys
from cardvault.services.signin import engine as authentication
from cardvault.services.signin import sessions as card_sessions
from cardvault.services.signin import web_sessions
from cardvault.services.system.runtime import Runtime
from cardvault.services.transport import envelopes

INTERVAL_SECONDS = 30
log = logging.getLogger("cardvault.maintenance")

Job = Callable[[Runtime], object]
JOBS: list[Job] = [
    card_sessions.purge_expired,
    authentication.purge_transactions,
    envelopes.purge_nonces,
    web_sessions.purge_expired,
    security_keys.purge_ceremonies,
    expiry.remind,
    erasure.erase_expired,
]


def run_once(rt: Runtime, jobs: list[Job] | None = None) -> None:
    """Run each housekeeping job once; a failing job is logged, the others still run."""
    for job in jobs if jobs is not None else JOBS:
        try:
            job(rt)
        except Exception:
            log.exception("maintenance job %s failed", getattr(job, "__name__", job))


class Maintenance:
    """A daemon thread running the jobs until stopped."""

    def __init__(self, rt: Runtime, interval: float = INTERVAL_SECONDS) -> None:
        self.rt = rt
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name="cardvault-maintenance", daemon=True
        )

    def start(self) -> None:
        """Start the housekeeping thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the housekeeping thread (waits up to ten seconds)."""
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            run_once(self.rt)
