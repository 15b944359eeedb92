"""The transport key pair clients encrypt sensitive payloads to (DESIGN §3.5).

Kept under ``<data>/keys/transport/<kid>.sealed``, sealed under the master key; every key in
that folder is published in the JWKS and accepted for decryption, so a new key can be added
before an old one is retired.
"""

from __future__ import annotations

from pathlib import Path

from cardvault.crypto.aead import aad, wipe
from cardvault.crypto.envelope import TransportKey
from cardvault.keystore.files import write_private
from cardvault.keystore.provider import MasterKey
from cardvault.services.system.runtime import Runtime


def _dir(keys_dir: Path) -> Path:
    return keys_dir / "transport"


def create(keys_dir: Path, master: MasterKey) -> TransportKey:
    key = TransportKey.generate()
    folder = _dir(keys_dir)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = bytearray(key.to_pem())
    try:
        sealed = master.seal(pem, aad=aad("transport-key", key.kid))
        write_private(folder / f"{key.kid}.sealed", sealed)
    finally:
        wipe(pem)
    return key


def keys(rt: Runtime) -> dict[str, TransportKey]:
    """All transport keys by kid, unsealed once per process."""
    folder = _dir(rt.settings.keys_dir)
    files = tuple(sorted(folder.glob("*.sealed"))) if folder.is_dir() else ()
    stamp = ("transport", files, tuple(p.stat().st_mtime_ns for p in files))
    return rt.memo(stamp, lambda: _load_all(files, rt.master_key))


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
