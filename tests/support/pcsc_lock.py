"""The machine's PC/SC lock: one pcscd serves a machine, and test sessions of several
engineers (and CI jobs) share it, so each holds an exclusive ``flock`` on
/tmp/cardvault-pcsc.lock while it uses pcscd.

``flock`` locks belong to an open file, not to a process: two fixtures of the *same*
test session that each opened the file would wait for each other forever. So the lock is
held here once per process and counted; every PC/SC fixture should take it through
:func:`exclusive`.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK = Path("/tmp/cardvault-pcsc.lock")

_guard = threading.Lock()
_held: dict[str, int] = {"depth": 0, "fd": -1}


@contextmanager
def exclusive(*, timeout: float = 900.0) -> Iterator[None]:
    """Hold the lock for the duration (re-entrant within this process)."""
    _acquire(timeout)
    try:
        yield
    finally:
        _release()


def _acquire(timeout: float) -> None:
    with _guard:
        if _held["depth"] == 0:
            _held["fd"] = _lock_file(timeout)
        _held["depth"] += 1


def _release() -> None:
    with _guard:
        _held["depth"] -= 1
        if _held["depth"] == 0:
            os.close(_held["fd"])  # closing the file releases the flock
            _held["fd"] = -1


def _lock_file(timeout: float) -> int:
    fd = os.open(LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise TimeoutError(
                    f"another test session held {LOCK} for {timeout:.0f} s"
                ) from None
            time.sleep(0.5)
