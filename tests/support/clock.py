"""A clock a test moves by hand, for code that takes ``clock=`` (a ``time.monotonic`` stand-in)."""

from __future__ import annotations


class FakeClock:
    """Starts at 1000 s; a test advances ``now`` itself."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
