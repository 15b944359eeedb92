"""What a card signs for a relying party: a digest bound to the RP's origin and challenge.

Binding the origin means a challenge relayed from one relying party to another yields a
signature the first one refuses.
"""

from __future__ import annotations

import hashlib

LABEL = b"cardvault-rp-authentication-v1"


def challenge_digest(origin: str, challenge: bytes) -> bytes:
    origin_bytes = origin.rstrip("/").encode()
    return hashlib.sha256(LABEL + b"\x00" + origin_bytes + b"\x00" + challenge).digest()
