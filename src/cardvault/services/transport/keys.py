"""The transport key pairs clients encrypt opening envelopes to (DESIGN §3.5 revised).

Kept under ``<data>/keys/transport/<kid>.sealed``, sealed under the master key; every key in
that folder is published in the JWKS and accepted for decryption, so a new key can be added
before an old one is retired. There are two kinds: an RSA-3072 key (``RSA-OAEP-256``, for
third-party clients) and a P-256 key (``ECDH-ES+A256KW``, which cardvault's own clients
prefer: one ECDH instead of an RSA decryption).

The folder is looked at no more than once a second (``RESCAN_SECONDS``): an encrypted request
must not cost a directory listing and a stat per key.
"""

from __future__ import annotations

import threading
import time
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


def _dir(keys_dir: Path) -> Path:
    return keys_dir / "transport"


def create(keys_dir: Path, master: MasterKey, *, ecdh: bool = False) -> TransportKey:
    """A new transport key (RSA-3072, or P-256 for ECDH-ES), sealed into the folder."""
    key = TransportKey.generate_ecdh() if ecdh else TransportKey.generate()
    folder = _dir(keys_dir)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = bytearray(key.to_pem())
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
    # oldest first: the newest key of a kind is the one clients are pointed at
    found_files = folder.glob("*.sealed") if folder.is_dir() else ()
    files = tuple(sorted(found_files, key=lambda p: (p.stat().st_mtime_ns, p.name)))
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
    out = {}
    for path in files:
        pem = master.open(path.read_bytes(), aad=aad("transport-key", path.stem))
        try:
            key = TransportKey.from_pem(pem)
        finally:
            wipe(pem)
        out[key.kid] = key
    return out
