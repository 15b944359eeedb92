"""Where signed chain heads are anchored outside the database, and reading them back.

Two anchors (``CARDVAULT_AUDIT_ANCHOR``): ``file`` (the default) appends one line per signed
head to ``audit/anchors.jsonl`` in the data directory, and ``syslog`` sends the same line to
the local syslog socket, from where the operator's syslog ships it off the host. Syslog
cannot be read back: ``cardvault audit verify --anchors FILE`` then reads an export of it.

The file is opened O_APPEND for each write of whole lines, so the processes of one host
interleave lines, never bytes. A written line survives the process (kill -9) at once; it is
forced to disk (fdatasync) within ``SYNC_DELAY`` after it, not per line: one fdatasync costs
about ten SQLite transactions here, and SQLite's own commits (synchronous=NORMAL) are not
forced to disk one by one either. So a power cut loses at most the last second of anchors,
which shows as nothing worse than those transactions being unanchored.

The anchor is written after the database commit (see ``audit_heads``); this module keeps it
fail-closed around that: ``ready()`` runs just before every audited commit and refuses while
the anchor cannot take a line (earlier lines still unwritten or unsynced, the disk read-only
or nearly full), so at most the transactions already committing when it broke are left
unanchored, and their lines are retried first.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

from cardvault.domain.audit_anchor import Anchor, AnchorUnreadable, parse_anchor_line
from cardvault.services.audit.errors import (
    AnchorsNotReadable,
    AnchorUnavailable,
    AnchorWriteFailed,
)
from cardvault.services.system.metrics import metrics
from cardvault.services.system.runtime import Runtime

log = logging.getLogger(__name__)
#: syslog facility auth (4) and severity info (6); the tag names the program for filters
_SYSLOG_PRIORITY = 4 * 8 + 6
SYSLOG_TAG = "cardvault-audit-anchor"
_SYSLOG_TIMEOUT = 2.0
#: how long a written anchor line may wait to be forced to disk
SYNC_DELAY = 1.0


class AnchorSink(Protocol):
    """Somewhere outside the database that signed heads are appended to."""

    def describe(self) -> str:
        """Where the anchor lines go, in words for an operator's message."""
        ...

    def check(self) -> None:
        """Raise OSError unless a line written now would most likely land."""

    def append(self, lines: Sequence[bytes]) -> None:
        """Append whole lines, or raise OSError."""

    def sync(self) -> None:
        """Force what was appended to stable storage, or raise OSError."""


@dataclass(kw_only=True)
class FileAnchor:
    """Anchors appended to a file of the data directory, one JSON line per signed head."""

    path: Path
    min_free_bytes: int
    _tail_checked: bool = field(default=False, repr=False)

    def describe(self) -> str:
        """The anchor file's path, for messages."""
        return f"the anchor file {self.path}"

    def check(self) -> None:
        """Raise OSError when the file cannot take lines now: a read-only or nearly full disk."""
        try:
            stat = os.statvfs(self.path.parent)
        except FileNotFoundError:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            stat = os.statvfs(self.path.parent)
        if stat.f_flag & os.ST_RDONLY:
            raise OSError(f"{self.path.parent} is on a read-only file system")
        if stat.f_bavail * stat.f_frsize < self.min_free_bytes:
            raise OSError(f"the disk of {self.path.parent} is full (or nearly)")

    def append(self, lines: Sequence[bytes]) -> None:
        """Append whole lines in one ``O_APPEND`` write; raises OSError when the disk refuses."""
        created = not self.path.exists()
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        fd = os.open(self.path, flags, 0o600)
        try:
            data = b"".join(lines)
            if not self._tail_checked:
                data = self._after_torn_tail(fd) + data
            _write_all(fd, data)
            if created:
                os.fdatasync(fd)
        finally:
            os.close(fd)
        if created:
            _sync_directory(self.path.parent)

    def sync(self) -> None:
        """Force the file to disk (``fdatasync``); raises OSError if that fails (a file
        rotated away meanwhile is not an error)."""
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        except FileNotFoundError:
            return  # moved away (rotated) since: what it held went with it
        try:
            os.fdatasync(fd)
        finally:
            os.close(fd)

    def _after_torn_tail(self, fd: int) -> bytes:
        """A newline first if a crash left the last line unfinished, so that torn line stays
        alone (the reader reports it) instead of spoiling the next anchor."""
        self._tail_checked = True
        size = os.fstat(fd).st_size
        if size == 0:
            return b""
        with self.path.open("rb") as f:
            f.seek(size - 1)
            return b"" if f.read(1) == b"\n" else b"\n"


@dataclass(kw_only=True)
class SyslogAnchor:
    """Anchors sent to the local syslog (facility auth), one datagram per line."""

    socket_path: Path

    def describe(self) -> str:
        """The syslog socket, for messages."""
        return f"syslog at {self.socket_path}"

    def check(self) -> None:
        """Syslog's health cannot be probed; a send that fails is what tells."""

    def append(self, lines: Sequence[bytes]) -> None:
        """Send each line as one datagram to syslog; raises OSError when syslog refuses."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.settimeout(_SYSLOG_TIMEOUT)
            sock.connect(str(self.socket_path))
            for line in lines:
                sock.send(b"<%d>%s: %s" % (_SYSLOG_PRIORITY, SYSLOG_TAG.encode(), line.rstrip()))

    def sync(self) -> None:
        """Syslog's durability is the syslog daemon's."""


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _sync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AnchorWriter:
    """One process's way to the anchor, with its fail-closed state (thread-safe)."""

    def __init__(self, sink: AnchorSink) -> None:
        self.sink = sink
        self._lock = threading.Lock()
        self._unwritten: list[bytes] = []
        self._unsynced: OSError | None = None
        self._sync_timer: threading.Timer | None = None
        #: when the oldest committed head not yet durably anchored was committed
        self._behind_since: float | None = None

    def lag_seconds(self) -> float:
        """How long the oldest signed head not yet on the anchor's disk has waited (0: none;
        normally under ``SYNC_DELAY``, growing while the anchor cannot be written)."""
        with self._lock:
            since = self._behind_since
        return 0.0 if since is None else time.monotonic() - since

    def pending_lines(self) -> float:
        """Signed heads committed whose line could not be written yet."""
        with self._lock:
            return len(self._unwritten)

    def ready(self) -> None:
        """Before an audited commit: raise AnchorUnavailable unless the anchor can take the
        heads about to be signed. Lines left over from a failed write go first."""
        try:
            with self._lock:
                self._catch_up()
            self.sink.check()
        except OSError as exc:
            raise AnchorUnavailable(
                f"Signed audit heads cannot be written to {self.sink.describe()} ({_why(exc)}), "
                "so nothing was done.",
                remedy="Free space on, or repair, the anchor's disk (or syslog); operations "
                "resume by themselves once it takes lines again.",
            ) from exc

    def _catch_up(self) -> None:
        if self._unwritten:
            self.sink.append(self._unwritten)
            log.warning("audit anchor: %d late lines written", len(self._unwritten))
            self._unwritten.clear()
        if self._unsynced is not None:
            self.sink.sync()
            self._unsynced = None
            self._behind_since = None

    def write(self, lines: Sequence[bytes]) -> None:
        """After a commit: anchor its signed heads; on failure keep them for the next
        ``ready()`` and raise AnchorWriteFailed (the operation itself did happen)."""
        with self._lock:
            if self._behind_since is None:
                self._behind_since = time.monotonic()
        try:
            self.sink.append(lines)
        except OSError as exc:
            with self._lock:
                self._unwritten.extend(lines)
            log.error("audit anchor: %d lines not written: %s", len(lines), _why(exc))
            raise AnchorWriteFailed(
                "The operation was done and recorded in the audit trail, but its signed "
                f"audit head could not be written to {self.sink.describe()} ({_why(exc)}). "
                "Further operations are refused until it can be.",
                remedy="Free space on, or repair, the anchor's disk (or syslog).",
            ) from exc
        self._sync_soon()

    def _sync_soon(self) -> None:
        with self._lock:
            if self._sync_timer is None:
                self._sync_timer = threading.Timer(SYNC_DELAY, self.sync)
                self._sync_timer.daemon = True
                self._sync_timer.start()

    def sync(self) -> None:
        """Force the lines written so far to disk; a failure makes ``ready()`` refuse
        until a sync succeeds."""
        with self._lock:
            self._sync_timer = None
        with self._lock:
            began = self._behind_since
        try:
            self.sink.sync()
        except OSError as exc:
            log.error("audit anchor: lines not forced to disk: %s", _why(exc))
            with self._lock:
                self._unsynced = exc
            return
        with self._lock:  # durable up to the lines written before this sync began
            if not self._unwritten and self._behind_since == began:
                self._behind_since = None

    def status(self) -> str:
        """For readiness: 'ok', or raise AnchorUnavailable."""
        self.ready()
        return "ok"


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


def anchor_writer(rt: Runtime) -> AnchorWriter:
    """This process's writer for the configured anchor (one per runtime: its settings are
    fixed)."""
    return rt.memo("audit-anchor", lambda: _observed(rt, AnchorWriter(_sink(rt))))


def _observed(rt: Runtime, writer: AnchorWriter) -> AnchorWriter:
    gauges = metrics(rt).gauges
    gauges.add(
        "audit_anchor_lag_seconds",
        "Age of the oldest signed audit head not yet durably written to the anchor",
        writer.lag_seconds,
    )
    gauges.add(
        "audit_anchor_pending_lines",
        "Signed audit heads committed whose anchor line could not be written yet",
        writer.pending_lines,
    )
    return writer


def _sink(rt: Runtime) -> AnchorSink:
    s = rt.settings
    if s.audit_anchor == "syslog":
        return SyslogAnchor(socket_path=s.audit_anchor_syslog_socket)
    return FileAnchor(path=s.anchor_file, min_free_bytes=s.audit_anchor_min_free_mib << 20)


# -- reading ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class UnreadableLine:
    """An anchor line that is not an anchor (torn by a crash): skipped and listed."""

    source: str
    line: int
    reason: str


@dataclass(kw_only=True)
class AnchorReading:
    """Anchors read from files, each up to the length it had when verification began (the
    service may be appending meanwhile); unreadable lines are kept to be reported."""

    lengths: dict[Path, int]
    unreadable: list[UnreadableLine] = field(default_factory=list)
    lines: int = 0

    def anchors(self) -> Iterator[Anchor]:
        """Every anchor of every file, in file order (each call reads them again)."""
        self.unreadable.clear()
        self.lines = 0
        for source, length in self.lengths.items():
            yield from self._read(source, length)

    def _read(self, source: Path, length: int) -> Iterator[Anchor]:
        with source.open("rb") as f:
            for number, raw in enumerate(_lines(f, length), start=1):
                if not raw.strip():
                    continue
                self.lines += 1
                try:
                    yield parse_anchor_line(raw.decode("utf-8", errors="replace"))
                except AnchorUnreadable as exc:
                    reason = exc.message if raw.endswith(b"\n") else "an unfinished last line"
                    self.unreadable.append(
                        UnreadableLine(source=str(source), line=number, reason=reason)
                    )


def _lines(f: BinaryIO, length: int) -> Iterator[bytes]:
    """The lines in the first ``length`` bytes of ``f``."""
    left = length
    for raw in f:
        if left <= 0:
            return
        yield raw[:left]
        left -= len(raw)


def anchor_sources(rt: Runtime, given: Sequence[Path]) -> tuple[Path, ...] | None:
    """The files to read anchors from: those given, else the anchor file; None when that
    file does not exist (yet). Syslog cannot be read back, so it needs them given."""
    for path in given:
        if not path.is_file():
            raise AnchorsNotReadable(f"There is no anchor file {path}.")
    if given:
        return tuple(given)
    if rt.settings.audit_anchor == "syslog":
        raise AnchorsNotReadable(
            "Signed heads are anchored to syslog, which cardvault cannot read back.",
            remedy=f"Export the lines tagged {SYSLOG_TAG} from your log server to a file and "
            "pass it with --anchors FILE (repeat it for several files).",
        )
    path = rt.settings.anchor_file
    return (path,) if path.is_file() else None
