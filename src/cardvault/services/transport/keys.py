"""The transport key pairs clients encrypt opening envelopes to (DESIGN §3.5 revised).

Kept under ``<data>/keys/transport/<kid>.sealed``, sealed under the master key; every key in
that folder is published in the JWKS and accepted for decryption, so a new key can be added
before an old one is retired. There are two kinds: an RSA-3072 key (``RSA-OAEP-256``, for
third-party clients) and a P-256 key (``ECDH-ES+A256KW``, which cardvault's own clients
prefer: one ECDH instead of an RSA decryption).

The folder is looked at no more than once a second (``RESCAN_SECONDS``): an encrypted request
must not cost a directory listing and a stat per key.

Which key is newest (the one cardvault's clients are pointed at) is read from the sealed file
itself: its first line says when it was added (``_HEADER``), under the master key's seal with
the rest. File times are not kept by every copy, restore or re-seal of the folder, so they
only order keys written before that line existed (older than any key that has it).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from cardvault.crypto.aead import aad, wipe
from cardvault.crypto.envelope import ECDH_KEY_MANAGEMENT, TransportKey, jwks
from cardvault.json_types import JsonObject
from cardvault.keystore.files import shred, write_private
from cardvault.keystore.provider import MasterKey
from cardvault.services.system.runtime import Runtime

RESCAN_SECONDS = 1.0
_scanned: dict[Path, tuple[float, dict[str, TransportKey]]] = {}
_lock = threading.Lock()
#: the first line of a sealed key's plaintext, followed by when it was added (ISO 8601)
_HEADER = b"cardvault-transport-key added="
#: when a key sealed without that line was added, as far as ranking goes: before any other
_BEFORE_ANY = datetime.min.replace(tzinfo=UTC)


def _dir(keys_dir: Path) -> Path:
    return keys_dir / "transport"


def create(
    keys_dir: Path, master: MasterKey, *, ecdh: bool = False, now: datetime | None = None
) -> TransportKey:
    """A new transport key (RSA-3072, or P-256 for ECDH-ES), sealed into the folder with
    when it was added (``now``, the runtime's clock when there is one)."""
    key = TransportKey.generate_ecdh() if ecdh else TransportKey.generate()
    folder = _dir(keys_dir)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    added = (now or datetime.now(UTC)).astimezone(UTC).isoformat().encode()
    pem = bytearray(_HEADER + added + b"\n" + key.to_pem())
    try:
        sealed = master.seal(pem, aad=aad("transport-key", key.kid))
        write_private(folder / f"{key.kid}.sealed", sealed)
    finally:
        wipe(pem)
    return key


def ensure_ecdh(rt: Runtime) -> None:
    """Give a service initialised before ECDH-ES its P-256 transport key (at start-up)."""
    if not any(k.alg == ECDH_KEY_MANAGEMENT for k in keys(rt).values()):
        create(rt.settings.keys_dir, rt.master_key, ecdh=True)
        with _lock:
            _scanned.pop(_dir(rt.settings.keys_dir), None)


def keys(rt: Runtime) -> dict[str, TransportKey]:
    """All transport keys by kid, unsealed once per process; the folder is re-read at most
    once a second, so a key added or retired by an operator is seen within that time."""
    folder = _dir(rt.settings.keys_dir)
    now = time.monotonic()
    seen = _fresh(folder, now)
    if seen is not None:
        return seen
    found_files = folder.glob("*.sealed") if folder.is_dir() else ()
    files = tuple(sorted(found_files))
    stamp = ("transport", files, tuple(p.stat().st_mtime_ns for p in files))
    found = rt.memo(stamp, lambda: _load_all(files, rt.master_key))
    with _lock:
        _scanned[folder] = (now, found)
    return found


def published(rt: Runtime) -> JsonObject:
    """The JWKS document of the current keys, built once per set of keys. Safe to keep: it
    is public, and keyed by the keys' kids (their RFC 7638 thumbprints), so a key added or
    retired makes a new document within ``RESCAN_SECONDS``."""
    found = keys(rt)
    return rt.memo(("jwks", tuple(found)), lambda: jwks(found.values()))


def published_if_fresh(rt: Runtime) -> JsonObject | None:
    """The JWKS document when the folder was looked at less than ``RESCAN_SECONDS`` ago,
    else None. It touches no file, so the event loop may call it and send only the look at
    the folder (a listing, a stat per key, perhaps an unsealing) to a worker thread."""
    found = _fresh(_dir(rt.settings.keys_dir), time.monotonic())
    if found is None:
        return None
    return rt.memo(("jwks", tuple(found)), lambda: jwks(found.values()))


def _fresh(folder: Path, now: float) -> dict[str, TransportKey] | None:
    seen = _scanned.get(folder)
    return seen[1] if seen is not None and now - seen[0] < RESCAN_SECONDS else None


def preferred_kid(rt: Runtime) -> str:
    """The kid cardvault's own clients should seal to: the newest ECDH key when there is
    one (after a rotation, the one just added; the older stays accepted until retired)."""
    found = keys(rt)
    ecdh = [kid for kid, key in found.items() if key.alg == ECDH_KEY_MANAGEMENT]
    return (ecdh or list(found) or [""])[-1]


def forget_scan(keys_dir: Path) -> None:
    """Look at the folder again on the next request (after this process changed it)."""
    with _lock:
        _scanned.pop(_dir(keys_dir), None)


def retire(keys_dir: Path, kid: str) -> None:
    """Remove one key's file (shredded); the caller checks that another of its kind stays."""
    path = _dir(keys_dir) / f"{kid}.sealed"
    shred(path)
    forget_scan(keys_dir)


def _load_all(files: tuple[Path, ...], master: MasterKey) -> dict[str, TransportKey]:
    """The keys oldest first (the newest of a kind is the one clients are pointed at)."""
    ranked = []
    for path in files:
        plain = master.open(path.read_bytes(), aad=aad("transport-key", path.stem))
        try:
            added, key = _unpack(plain)
        finally:
            wipe(plain)
        ranked.append(((added, path.stat().st_mtime_ns, path.name), key))
    ranked.sort(key=lambda entry: entry[0])
    return {key.kid: key for _, key in ranked}


def _unpack(plain: bytearray) -> tuple[datetime, TransportKey]:
    """When the key was added (``_BEFORE_ANY`` for a file sealed without it) and the key."""
    if not plain.startswith(_HEADER):
        return _BEFORE_ANY, TransportKey.from_pem(plain)
    end = plain.index(b"\n")
    added = datetime.fromisoformat(plain[len(_HEADER) : end].decode())
    pem = plain[end + 1 :]
    try:
        return added, TransportKey.from_pem(pem)
    finally:
        wipe(pem)
