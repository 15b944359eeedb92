"""The answer to a link's last request, kept so that a repeated request is answered, not run.

A connector whose request or answer was lost on the network sends the same request again
with the same sequence number. The service keeps the last answer sealed under a key derived
from the caller's SK (or IK), which it does not store: the kept answer -- possibly a
decrypted secret -- is readable only by whoever can send that request again.
"""

from __future__ import annotations

from cardvault.crypto.aead import SealBroken, aad, open_sealed, seal, wipe
from cardvault.crypto.kdf import hkdf_key
from cardvault.services.signin.errors import SessionInvalid

__all__ = ["keep", "kept"]

_INFO = b"cardvault/piv-last-response/v1"


def keep(caller_key: bytes, link_id: str, seq: int, response: bytes, *, whole: bool) -> bytes:
    """Seal the last response of a reader link under the caller's key, so that a retried
    request gets the same answer."""
    key = hkdf_key(caller_key, link_id.encode(), _INFO)
    try:
        return seal(key, bytes((whole,)) + response, aad("piv-response", link_id, seq))
    finally:
        wipe(key)


def kept(caller_key: bytes, link_id: str, seq: int, blob: bytes) -> tuple[bytes, bool]:
    """(response, whole) of the kept answer; SessionInvalid if the key is not the caller's."""
    key = hkdf_key(caller_key, link_id.encode(), _INFO)
    try:
        plain = open_sealed(key, blob, aad("piv-response", link_id, seq))
    except SealBroken:
        raise SessionInvalid("The key does not match this session.") from None
    finally:
        wipe(key)
    return bytes(plain[1:]), bool(plain[0])
