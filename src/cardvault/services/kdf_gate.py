"""Admission control for key derivations (DESIGN §3.3, issue 3's performance rules).

Argon2id is the expensive step of every login. At most ``slots`` derivations run at once
(about the number of cores); up to ``queue`` more wait; beyond that the request is refused
at once with ``Busy`` (HTTP 429 + Retry-After) instead of letting latency grow without bound.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from cardvault.errors import CardvaultError


class Busy(CardvaultError):
    code = "busy"
    http_status = 429
    exit_code = 8

    def __init__(self, retry_after: int) -> None:
        super().__init__("cardvault is busy; try again in a moment.", retry_after=retry_after)
        self.retry_after = retry_after


class KdfGate:
    def __init__(self, slots: int | None = None, queue: int | None = None) -> None:
        self.slots = slots or os.cpu_count() or 1
        self.queue = queue if queue is not None else 4 * self.slots
        self._sem = threading.BoundedSemaphore(self.slots)
        self._lock = threading.Lock()
        self._admitted = 0

    @contextmanager
    def slot(self) -> Iterator[None]:
        with self._lock:
            if self._admitted >= self.slots + self.queue:
                raise Busy(retry_after=1)
            self._admitted += 1
        try:
            with self._sem:
                yield
        finally:
            with self._lock:
                self._admitted -= 1
