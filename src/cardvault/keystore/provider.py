"""The port every master-key provider implements, and the sealed-blob format."""

from __future__ import annotations

import struct
from typing import Protocol

from cardvault.errors import IntegrityError

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
