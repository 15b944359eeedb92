"""Re-checking a PIN just verified on the same reader link without another Argon2id run.

OpenSC sends VERIFY twice for one 9C signature (login, then the "context specific" login of
a PIN-always key), and again for every program that opens the card. Each VERIFY of the right
PIN would cost a full Argon2id derivation. After a VERIFY that the Argon2id verifier accepted,
the link keeps ``HMAC(K, PIN)`` where ``K = HKDF(SK or IK, link id)`` -- a key only the
connector holds -- sealed under the master key, for a few minutes. A later VERIFY on the same
link whose HMAC matches is right; anything else goes through the verifier and counts as
usual. Finding the PIN from this value takes the database, the master key *and* the
connector's SK, which together open the card's keys anyway; it ends with the link, with a
PIN change, and after ``TTL``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from cardvault.crypto.aead import aad, wipe
from cardvault.crypto.kdf import hkdf_key
from cardvault.errors import CardvaultError
from cardvault.keystore.provider import MasterKey

__all__ = ["TTL", "PinRecheck"]

TTL = timedelta(minutes=10)
_INFO = b"cardvault/piv-pin-recheck/v1"


@dataclass(frozen=True, kw_only=True)
class PinRecheck:
    """The link's key for PIN re-checks and the value it kept, if any is still fresh."""

    link_id: str
    key: bytes
    kept: bytes | None = None

    @classmethod
    def load(
        cls,
        master: MasterKey,
        *,
        link_id: str,
        caller_key: bytes,
        blob: bytes | None,
        now: datetime,
    ) -> PinRecheck:
        """The kept PIN check of a link, if it is still fresh."""
        derived = hkdf_key(caller_key, link_id.encode(), _INFO)
        try:
            key = bytes(derived)
        finally:
            wipe(derived)
        return cls(link_id=link_id, key=key, kept=_open(master, link_id, blob, now))

    def matches(self, block: bytes) -> bool:
        """Whether the block is the PIN checked before (compared in constant time)."""
        return self.kept is not None and hmac.compare_digest(self._tag(block), self.kept)

    def seal(self, master: MasterKey, block: bytes, now: datetime) -> bytes:
        """Seal the tag of a PIN that checked out, to recognise it on the next session."""
        body = {
            "tag": base64.b64encode(self._tag(block)).decode(),
            "until": (now + TTL).isoformat(),
        }
        return master.seal(json.dumps(body).encode(), aad=aad("piv-pin-recheck", self.link_id))

    def _tag(self, block: bytes) -> bytes:
        return hmac.new(self.key, block, hashlib.sha256).digest()


def _open(master: MasterKey, link_id: str, blob: bytes | None, now: datetime) -> bytes | None:
    if blob is None:
        return None
    try:
        plain = master.open(blob, aad=aad("piv-pin-recheck", link_id))
        body = json.loads(bytes(plain))
        wipe(plain)
        if now >= datetime.fromisoformat(body["until"]):
            return None
        return base64.b64decode(body["tag"], validate=True)
    except (CardvaultError, ValueError, KeyError, TypeError):
        return None  # an unreadable re-check value only costs an Argon2id run
