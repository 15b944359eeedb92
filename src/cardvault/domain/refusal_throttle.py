"""How often a refused caller is written to the audit chain (DESIGN §3.6, §3.7).

Every refusal at ingress is audited, but a flood must not fill the chain: at most one event
per source per window, and at most ``budget`` events per window from all sources together.
What is held back is not lost: a source's next event carries how many of its refusals were
not written (``suppressed``), and the next event of any source carries the refusals dropped
because the budget or the table of sources was full (``suppressed_elsewhere``).

Pure apart from its own memory: the time comes in as an argument. The table is bounded
(``max_sources``), so a flood from many addresses costs a fixed amount of memory.
"""

from __future__ import annotations

import ipaddress
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from cardvault.domain.networks import client_ip

WINDOW = timedelta(minutes=1)
BUDGET = 60
MAX_SOURCES = 10_000


@dataclass(frozen=True, kw_only=True)
class Verdict:
    write: bool
    suppressed: int = 0
    suppressed_elsewhere: int = 0


@dataclass
class _Source:
    last_written: datetime
    suppressed: int = 0


def source_of(address: str | None) -> str:
    """Whom a limit applies to: an IPv4 address, or the /64 an IPv6 address is in (one
    host usually holds a whole /64, so per-address limits would not hold it back)."""
    ip = client_ip(address)
    if ip is None:
        return "unknown"
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class RefusalThrottle:
    def __init__(
        self, *, window: timedelta = WINDOW, budget: int = BUDGET, max_sources: int = MAX_SOURCES
    ) -> None:
        self.window, self.budget, self.max_sources = window, budget, max_sources
        self._sources: dict[str, _Source] = {}
        self._window_start: datetime | None = None
        self._written = 0
        self._overflow = 0
        self._lock = threading.Lock()

    def admit(self, source: str, now: datetime) -> Verdict:
        """Whether this refusal is written now, and what the event reports as held back."""
        with self._lock:
            self._roll_window(now)
            entry = self._sources.get(source)
            if entry is not None and self._recent(entry, now):
                entry.suppressed += 1
                return Verdict(write=False)
            if entry is None and len(self._sources) >= self.max_sources:
                self._forget_old(now)
            if self._written >= self.budget or (
                entry is None and len(self._sources) >= self.max_sources
            ):
                self._overflow += 1
                return Verdict(write=False)
            verdict = Verdict(
                write=True,
                suppressed=entry.suppressed if entry else 0,
                suppressed_elsewhere=self._overflow,
            )
            self._sources[source] = _Source(last_written=now)
            self._written += 1
            self._overflow = 0
            return verdict

    def _recent(self, entry: _Source, now: datetime) -> bool:
        return entry.last_written <= now < entry.last_written + self.window

    def _roll_window(self, now: datetime) -> None:
        start = self._window_start
        if start is None or not start <= now < start + self.window:
            self._window_start, self._written = now, 0

    def _forget_old(self, now: datetime) -> None:
        """Drop sources whose window has passed; what they held back moves to the overflow
        count, so it is still reported."""
        for source, entry in list(self._sources.items()):
            if not self._recent(entry, now):
                self._overflow += entry.suppressed
                del self._sources[source]
