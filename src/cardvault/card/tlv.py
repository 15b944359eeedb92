"""BER-TLV as PIV uses it (ISO/IEC 7816-4 §5.2, SP 800-73-4 Part 1 Appendix A): strict, bounded.

Tags are at most three bytes (``5F C1 05``), lengths use the minimal definite form up to
``83 xx xx xx``; indefinite lengths, non-minimal lengths, padding bytes and trailing garbage
are refused. Values are slices of the input, so parsing never allocates more than it reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cardvault.errors import InvalidInput

__all__ = [
    "Tlv",
    "TlvError",
    "decode",
    "decode_map",
    "decode_single",
    "encode",
    "encode_all",
    "encode_length",
    "encode_tag",
]

MAX_TAG_BYTES = 3
MAX_LENGTH_BYTES = 3


class TlvError(InvalidInput):
    code = "tlv_malformed"


@dataclass(frozen=True, kw_only=True)
class Tlv:
    tag: int
    value: bytes

    def to_bytes(self) -> bytes:
        return encode(self.tag, self.value)


def encode_tag(tag: int) -> bytes:
    if not 0 < tag < 1 << (8 * MAX_TAG_BYTES):
        raise TlvError(f"tag {tag:X} is out of range")
    return tag.to_bytes((tag.bit_length() + 7) // 8, "big")


def encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes((length,))
    size = (length.bit_length() + 7) // 8
    if size > MAX_LENGTH_BYTES:
        raise TlvError(f"length {length} is too large")
    return bytes((0x80 | size,)) + length.to_bytes(size, "big")


def encode(tag: int, value: bytes) -> bytes:
    return encode_tag(tag) + encode_length(len(value)) + value


def encode_all(items: Iterable[tuple[int, bytes]]) -> bytes:
    return b"".join(encode(tag, value) for tag, value in items)


def decode(data: bytes) -> tuple[Tlv, ...]:
    """All TLVs of ``data`` in order; anything malformed or left over raises TlvError."""
    items = []
    offset = 0
    while offset < len(data):
        tag, offset = _read_tag(data, offset)
        length, offset = _read_length(data, offset)
        if length > len(data) - offset:
            raise TlvError("a value runs past the end of the data")
        items.append(Tlv(tag=tag, value=bytes(data[offset : offset + length])))
        offset += length
    return tuple(items)


def decode_map(data: bytes) -> dict[int, bytes]:
    """The TLVs of ``data`` by tag; a tag given twice is malformed."""
    items = decode(data)
    found = {item.tag: item.value for item in items}
    if len(found) != len(items):
        raise TlvError("a tag occurs twice")
    return found


def decode_single(data: bytes, tag: int) -> bytes:
    """The value of ``data`` when it is exactly one TLV with ``tag``."""
    items = decode(data)
    if len(items) != 1 or items[0].tag != tag:
        raise TlvError(f"expected exactly one {tag:X} object")
    return items[0].value


def _read_tag(data: bytes, offset: int) -> tuple[int, int]:
    first = data[offset]
    if first in (0x00, 0xFF):
        raise TlvError("padding bytes are not allowed between objects")
    end = offset + 1
    if first & 0x1F == 0x1F:
        while end < len(data) and data[end] & 0x80:
            end += 1
        end += 1
        if end > len(data):
            raise TlvError("a tag runs past the end of the data")
        if end - offset > MAX_TAG_BYTES:
            raise TlvError("a tag is longer than three bytes")
    return int.from_bytes(data[offset:end], "big"), end


def _read_length(data: bytes, offset: int) -> tuple[int, int]:
    if offset >= len(data):
        raise TlvError("a length is missing")
    first = data[offset]
    if first < 0x80:
        return first, offset + 1
    size = first & 0x7F
    if size == 0 or size > MAX_LENGTH_BYTES:
        raise TlvError("indefinite or oversized length form")
    end = offset + 1 + size
    if end > len(data):
        raise TlvError("a length runs past the end of the data")
    length = int.from_bytes(data[offset + 1 : end], "big")
    if encode_length(length) != data[offset:end]:
        raise TlvError("the length is not in its shortest form")
    return length, end
