"""The master key's versions while one is rotated (DESIGN §4, issue 20): seal under the
current version, open under whichever version a blob names.

A rotation adds a version to the provider's description (``master.json``) and makes it
current; every running instance notices within ``RESCAN_SECONDS`` (one stat of the file)
and seals under it from then on, while blobs of the old version still open. The old
version leaves the description when the re-sealing is done (``services/keys/master``).
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

from cardvault.errors import IntegrityError
from cardvault.keystore.provider import MasterKey, unpack

RESCAN_SECONDS = 1.0


class MasterKeyRing:
    """Implements the MasterKey port over one or more versions of the key."""

    def __init__(
        self,
        versions: dict[int, MasterKey],
        current: int,
        *,
        description: Path,
        reload: Callable[[], tuple[dict[int, MasterKey], int]],
    ) -> None:
        self._versions, self._current = dict(versions), current
        self._description, self._reload = description, reload
        self._stamp = _stamp(description)
        self._checked = time.monotonic()
        self._lock = threading.Lock()

    @property
    def mk_version(self) -> int:
        self._refresh()
        return self._current

    @property
    def key_id(self) -> str:
        return self.current().key_id

    @property
    def versions(self) -> tuple[int, ...]:
        """The versions this process can open, oldest first."""
        self._refresh()
        return tuple(sorted(self._versions))

    def current(self) -> MasterKey:
        self._refresh()
        return self._versions[self._current]

    def seal(self, plaintext: bytes | bytearray, *, aad: bytes) -> bytes:
        return self.current().seal(plaintext, aad=aad)

    def open(self, blob: bytes, *, aad: bytes) -> bytearray:
        version, _ = unpack(blob)
        key = self._versions.get(version)
        if key is None:
            self._refresh(force=True)
            key = self._versions.get(version)
        if key is None:
            raise IntegrityError(f"Sealed under master key version {version}, not held here.")
        return key.open(blob, aad=aad)

    def reseal(self, blob: bytes, *, aad: bytes) -> bytes | None:
        """The blob sealed under the current version; None when it already is."""
        version, _ = unpack(blob)
        if version == self.mk_version:
            return None
        plain = self.open(blob, aad=aad)
        try:
            return self.seal(plain, aad=aad)
        finally:
            plain[:] = bytes(len(plain))

    def refresh(self) -> None:
        """Read the description again now (after this process changed it)."""
        self._refresh(force=True)

    def close(self) -> None:
        """Close what each version holds open (an HSM session)."""
        for key in self._versions.values():
            close = getattr(key, "close", None)
            if close is not None:
                close()

    def _refresh(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked < RESCAN_SECONDS:
            return
        with self._lock:
            self._checked = now
            stamp = _stamp(self._description)
            if stamp == self._stamp:
                return
            versions, current = self._reload()
            self._versions, self._current, self._stamp = versions, current, stamp


def _stamp(path: Path) -> tuple[int, int, int]:
    try:
        st = path.stat()
    except FileNotFoundError:
        return (0, 0, 0)
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class DescribedKeyStore(ABC):
    """What every provider's key store shares: ``<data>/keys/master.json`` describes the
    versions of the key, and the ring reloads them when that file changes. A provider says
    how one version is found (a file, a token object)."""

    keys_dir: Path

    @property
    def info_file(self) -> Path:
        return self.keys_dir / "master.json"

    def exists(self) -> bool:
        return self.info_file.exists()

    def load(self) -> MasterKeyRing:
        """Every version the description lists, each checked; the current one seals."""
        versions, current = self._load_versions()
        return MasterKeyRing(
            versions, current, description=self.info_file, reload=self._load_versions
        )

    @abstractmethod
    def _load_versions(self) -> tuple[dict[int, MasterKey], int]:
        """The versions by number, and the current one's number."""
