"""Shamir secret sharing over GF(2^8) for the master key's custodians (DESIGN §3.1).

This is the one hand-rolled primitive in cardvault; it is small and checked by property tests.
Arithmetic is table-free (no secret-indexed lookups) over the AES field x^8+x^4+x^3+x+1.

A share is text a custodian can print, read and type back::

    cvs1:<key id>:<threshold>:<index>:XXXX-XXXX-...-XXXX

The last field is base32 of ``split id (4) ‖ share bytes ‖ checksum (4)``. The random split id
tells shares of two different splits of the same key apart; the checksum (SHA-256 over every
other field) catches typos anywhere in the share. Neither reveals anything about the secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from cardvault.errors import InvalidInput, error

__all__ = [
    "MAX_SECRET",
    "ShareDuplicate",
    "ShareMalformed",
    "ShareMismatch",
    "ShareParameters",
    "ShareTypo",
    "TooFewShares",
    "combine",
    "split",
]

VERSION = "cvs1"
MAX_SECRET = 1024
_SPLIT_ID_SIZE = 4
_CHECK_SIZE = 4
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class ShareParameters(InvalidInput):
    """Threshold, share count or secret out of range."""

    code = "share_parameters"


@error
class ShareMalformed(InvalidInput):
    code = "share_malformed"
    position: int | None = None


@error
class ShareTypo(InvalidInput):
    code = "share_typo"
    position: int


class ShareMismatch(InvalidInput):
    """The shares belong to different keys or to different splits of one key."""

    code = "share_mismatch"


class ShareDuplicate(InvalidInput):
    code = "share_duplicate"


@error
class TooFewShares(InvalidInput):
    code = "share_too_few"
    given: int | None = None


@dataclass(frozen=True, kw_only=True)
class _Share:
    key_id: str
    threshold: int
    index: int
    split_id: bytes
    data: bytes


# --- GF(2^8) arithmetic -------------------------------------------------------------------


def _gf_mul(a: int, b: int) -> int:
    """Multiply in GF(2^8) without branches or tables on the operands."""
    product = 0
    for _ in range(8):
        product ^= -(b & 1) & a
        a = ((a << 1) & 0xFF) ^ (-(a >> 7) & 0x1B)
        b >>= 1
    return product


def _gf_inv(a: int) -> int:
    """a^254 = a^-1 for a ≠ 0 (Fermat), by a fixed square-and-multiply chain."""
    result, power = 1, a
    for bit in range(8):
        if (254 >> bit) & 1:
            result = _gf_mul(result, power)
        power = _gf_mul(power, power)
    return result


def _eval(coefficients: Sequence[int], x: int) -> int:
    """Horner's rule; coefficients[0] is the constant term (the secret byte)."""
    y = 0
    for c in reversed(coefficients):
        y = _gf_mul(y, x) ^ c
    return y


def _lagrange_weights(xs: Sequence[int], at: int) -> list[int]:
    """Weights w_i with f(at) = Σ w_i·f(x_i) for any polynomial of degree < len(xs)."""
    weights = []
    for i, xi in enumerate(xs):
        num, den = 1, 1
        for j, xj in enumerate(xs):
            if i != j:
                num = _gf_mul(num, xj ^ at)
                den = _gf_mul(den, xj ^ xi)
        weights.append(_gf_mul(num, _gf_inv(den)))
    return weights


def _interpolate(points: Sequence[tuple[int, bytes]], at: int = 0) -> bytes:
    """Evaluate, byte by byte, the polynomial through ``points`` at ``at``."""
    weights = _lagrange_weights([x for x, _ in points], at)
    out = bytearray(len(points[0][1]))
    for weight, (_, ys) in zip(weights, points, strict=True):
        for k, y in enumerate(ys):
            out[k] ^= _gf_mul(weight, y)
    return bytes(out)


# --- split / combine ------------------------------------------------------------------------


def split(secret: bytes, *, shares: int, threshold: int, key_id: str) -> list[str]:
    """Split ``secret`` into ``shares`` texts, any ``threshold`` of which recover it."""
    _check_parameters(secret, shares, threshold, key_id)
    split_id = secrets.token_bytes(_SPLIT_ID_SIZE)
    rows = [bytearray(len(secret)) for _ in range(shares)]
    for k, byte in enumerate(secret):
        coefficients = [byte, *secrets.token_bytes(threshold - 1)]
        for x in range(1, shares + 1):
            rows[x - 1][k] = _eval(coefficients, x)
    return [
        _encode(_Share(key_id=key_id, threshold=threshold, index=i, split_id=split_id, data=row))
        for i, row in enumerate((bytes(r) for r in rows), start=1)
    ]


def combine(shares: Sequence[str]) -> tuple[bytes, str]:
    """Recover ``(secret, key_id)`` from at least ``threshold`` shares, in any order.

    Shares beyond the threshold are checked against the recovered polynomial, so a wrong
    share among them is reported rather than silently ignored.
    """
    if isinstance(shares, str):
        raise ShareMalformed("give a list of shares, not one string")
    parsed = [_decode(text, position) for position, text in enumerate(shares, start=1)]
    if not parsed:
        raise TooFewShares("no shares given")
    _check_consistent(parsed)
    needed = parsed[0].threshold
    if len(parsed) < needed:
        raise TooFewShares(f"{len(parsed)} shares given, {needed} needed", given=len(parsed))
    points = [(s.index, s.data) for s in parsed]
    base = points[:needed]
    for x, ys in points[needed:]:
        if not hmac.compare_digest(_interpolate(base, x), ys):
            raise ShareMismatch(f"share with index {x} does not fit the others")
    return _interpolate(base), parsed[0].key_id


def _check_parameters(secret: bytes, shares: int, threshold: int, key_id: str) -> None:
    if not 1 < threshold <= shares <= 255:
        raise ShareParameters(
            f"need 1 < threshold ≤ shares ≤ 255, got threshold {threshold} of {shares} shares"
        )
    if not 1 <= len(secret) <= MAX_SECRET:
        raise ShareParameters(f"the secret must be 1 to {MAX_SECRET} bytes")
    if not _KEY_ID.fullmatch(key_id):
        raise ShareParameters("the key id must be 1 to 64 letters, digits, '.', '_' or '-'")


def _check_consistent(parsed: Sequence[_Share]) -> None:
    first = parsed[0]
    if any(s.key_id != first.key_id for s in parsed):
        raise ShareMismatch("these shares come from different keys")
    if any(s.split_id != first.split_id or s.threshold != first.threshold for s in parsed):
        raise ShareMismatch("these shares come from different splits of the key")
    if any(len(s.data) != len(first.data) for s in parsed):
        raise ShareMismatch("these shares have different lengths")
    seen: set[int] = set()
    for s in parsed:
        if s.index in seen:
            raise ShareDuplicate(f"the share with index {s.index} was given twice")
        seen.add(s.index)


# --- text format ----------------------------------------------------------------------------


def _checksum(key_id: str, threshold: int, index: int, split_id: bytes, data: bytes) -> bytes:
    header = f"{VERSION}:{key_id}:{threshold}:{index}:".encode()
    return hashlib.sha256(header + split_id + data).digest()[:_CHECK_SIZE]


def _encode(share: _Share) -> str:
    check = _checksum(share.key_id, share.threshold, share.index, share.split_id, share.data)
    body = base64.b32encode(share.split_id + share.data + check).decode().rstrip("=")
    groups = "-".join(body[i : i + 4] for i in range(0, len(body), 4))
    return f"{VERSION}:{share.key_id}:{share.threshold}:{share.index}:{groups}"


def _decode(text: str, position: int) -> _Share:
    """Parse one share; ``position`` (1-based, as given) names it in error messages."""
    fields = text.strip().split(":") if isinstance(text, str) else []
    if len(fields) != 5 or fields[0].lower() != VERSION:
        raise ShareMalformed(f"share {position} is not a cardvault share", position=position)
    _, key_id, threshold, index, body = fields
    raw = _decode_body(body, position)
    if not (_KEY_ID.fullmatch(key_id) and _small_int(threshold) and _small_int(index)):
        raise ShareMalformed(f"share {position} is malformed", position=position)
    if len(raw) <= _SPLIT_ID_SIZE + _CHECK_SIZE:
        raise ShareMalformed(f"share {position} is too short", position=position)
    split_id, data = raw[:_SPLIT_ID_SIZE], raw[_SPLIT_ID_SIZE:-_CHECK_SIZE]
    expected = _checksum(key_id, int(threshold), int(index), split_id, data)
    if not hmac.compare_digest(expected, raw[-_CHECK_SIZE:]):
        raise ShareTypo(f"share {position} has a typo", position=position)
    if not 1 < int(threshold) <= 255 or not 1 <= int(index) <= 255:
        raise ShareMalformed(f"share {position} is malformed", position=position)
    return _Share(
        key_id=key_id, threshold=int(threshold), index=int(index), split_id=split_id, data=data
    )


def _decode_body(body: str, position: int) -> bytes:
    compact = re.sub(r"[\s-]", "", body).upper()
    try:
        return base64.b32decode(compact + "=" * (-len(compact) % 8))
    except (binascii.Error, ValueError) as err:
        raise ShareTypo(f"share {position} has a typo", position=position) from err


def _small_int(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 3
