"""Admission control for key derivations (DESIGN §3.3, issue 3's performance rules).

Argon2id is the expensive step of every login. At most ``slots`` derivations run at once
(about the number of cores) and up to ``queue`` more may wait; beyond that a request is
refused at once with ``Busy`` (HTTP 429 + Retry-After) instead of letting latency grow
without bound.

Admission comes *before* a passcode attempt is reserved, and running after it: a reserved
attempt is then always evaluated, and a refusal for a locked card never waits behind KDFs.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from cardvault.services.signin.errors import Busy


class KdfGate:
    """Admission to the passcode KDF: so many run at once, so many wait, the rest are Busy."""

    def __init__(self, slots: int | None = None, queue: int | None = None) -> None:
        self.slots = slots or os.cpu_count() or 1
        self.queue = queue if queue is not None else 4 * self.slots
        self._sem = threading.BoundedSemaphore(self.slots)
        self._lock = threading.Lock()
        self._admitted = 0
        self._running = 0
        self._waited: Callable[[float], None] = _ignore
        self._refused: Callable[[], None] = _nothing

    def observe(self, *, waited: Callable[[float], None], refused: Callable[[], None]) -> None:
        """Report each wait for a slot (seconds) and each refusal (the metrics)."""
        self._waited, self._refused = waited, refused

    def waiting(self) -> float:
        """Admitted derivations not yet running: the queue's depth now."""
        with self._lock:
            return self._admitted - self._running

    def running_now(self) -> float:
        """How many key derivations run now (for /metrics)."""
        with self._lock:
            return self._running

    @contextmanager
    def admitted(self) -> Iterator[None]:
        """A place among those running or waiting, or Busy at once."""
        with self._lock:
            if self._admitted >= self.slots + self.queue:
                self._refused()
                raise Busy(retry_after=1)
            self._admitted += 1
        try:
            yield
        finally:
            with self._lock:
                self._admitted -= 1

    @contextmanager
    def running(self) -> Iterator[None]:
        """Wait for a CPU slot (call inside ``admitted``)."""
        began = time.monotonic()
        with self._sem:
            self._waited(time.monotonic() - began)
            with self._lock:
                self._running += 1
            try:
                yield
            finally:
                with self._lock:
                    self._running -= 1

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Be admitted and run: raises Busy when the gate is full."""
        with self.admitted(), self.running():
            yield


def _ignore(_seconds: float) -> None:
    """No one is measuring."""


def _nothing() -> None:
    """No one is counting."""
