"""The port every master-key provider implements, and the sealed-blob format."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any, Protocol

from cardvault.errors import IntegrityError, NotSetUp

BLOB_FORMAT = 1
_HEADER = struct.Struct(">BI")  # format, mk_version


class MasterKey(Protocol):
    """Seals and opens blobs under the master key; the key itself never leaves."""

    @property
    def mk_version(self) -> int: ...

    @property
    def key_id(self) -> str: ...

    def seal(self, plaintext: bytes | bytearray, *, aad: bytes) -> bytes: ...

    def open(self, blob: bytes, *, aad: bytes) -> bytearray: ...


class KeyStore(Protocol):
    """Where a provider keeps (or finds) the master key for one data directory."""

    def exists(self) -> bool: ...

    def create(self) -> MasterKey: ...

    def load(self) -> MasterKey: ...

    def is_sealed(self) -> bool: ...

    def begin_rotation(self) -> int:
        """Make a new version of the key current, keeping the older ones; its version."""
        ...

    def finish_rotation(self) -> list[int]:
        """Forget (destroy) the older versions; which they were."""
        ...


def pack(mk_version: int, body: bytes) -> bytes:
    return _HEADER.pack(BLOB_FORMAT, mk_version) + body


def unpack(blob: bytes) -> tuple[int, bytes]:
    """Split a sealed blob into (mk_version, body); refuse what we did not write."""
    if len(blob) < _HEADER.size:
        raise IntegrityError("A sealed blob is truncated.")
    fmt, version = _HEADER.unpack_from(blob)
    if fmt != BLOB_FORMAT:
        raise IntegrityError(f"A sealed blob has unknown format {fmt}.")
    return version, blob[_HEADER.size :]


class DataDirDamaged(NotSetUp):
    """The data directory is incomplete or belongs to another set-up."""

    code = "data_dir_damaged"


class ProviderMismatch(DataDirDamaged):
    code = "key_provider_mismatch"


def read_description(info_file: Path, provider: str) -> dict[str, Any]:
    """``master.json``: which provider holds the key, and what it needs to find and check it.
    A description without a provider is the local one (written before there was a choice)."""
    try:
        raw = json.loads(info_file.read_text())
    except FileNotFoundError as exc:
        raise DataDirDamaged(
            f"No master key in {info_file.parent}.", remedy="Run `cardvault init` first."
        ) from exc
    except ValueError as exc:
        raise DataDirDamaged(
            f"{info_file} is damaged: it is not a key description.",
            remedy="Restore the data directory from a backup.",
        ) from exc
    if not isinstance(raw, dict):
        raise DataDirDamaged(f"{info_file} is damaged: it is not a key description.")
    described = raw.get("provider", "local")
    if described != provider:
        raise ProviderMismatch(
            f"This data directory's master key is held by the {described!r} key provider, "
            f"not {provider!r}.",
            remedy=f"Set CARDVAULT_KEY_PROVIDER={described} (and its settings).",
        )
    return raw
