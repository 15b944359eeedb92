"""A reader link's channel, opened without a trip to the database (DESIGN §3.8 revised).

A connector sends every APDU in a ``dir``/A256GCM envelope under its link's channel key CK
(kid = link id). Reading the link's sealed CK, opening it under the master key and
remembering the ``jti`` in a transaction of their own cost more than the APDU: so CK is
opened once per link and kept in this process (at most ``MAX_KEYS`` links, the least
recently used forgotten first), and the ``jti`` is remembered by the relay in the
transaction that commits the APDU.

What the channel check by the database gave, the relay's snapshot gives instead: it finds
the link only by its id *and* its session's token, in a session that has not ended or
expired, so the CK of an ended link opens nothing (a kept key only decrypts; the snapshot
then finds no link). Only the relay may use this: other routes open channels with
:func:`channel.open_request`, which checks the row itself.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

from cardvault.crypto import channel as cchannel
from cardvault.crypto.aead import aad
from cardvault.services.system.runtime import Runtime
from cardvault.services.transport.channel import LINK, Channel, channel_row
from cardvault.services.transport.envelopes import LEEWAY_SECONDS
from cardvault.services.transport.errors import ChannelClosed, ChannelMismatch
from cardvault.store.sqlite_writers import READ

__all__ = ["MAX_KEYS", "LinkChannel", "forget", "open_request"]

#: links whose CK this process keeps open at once (32 bytes and a hash each)
MAX_KEYS = 4096


@dataclass(frozen=True, kw_only=True)
class LinkChannel(Channel):
    """A link's channel request, opened but not yet spent: the relay remembers ``jti``
    (until ``jti_expires``) in the transaction that commits the APDU."""

    jti_expires: datetime


@dataclass(frozen=True)
class _Kept:
    key: bytes
    token_hash: str


_keys: OrderedDict[str, _Kept] = OrderedDict()
_lock = threading.Lock()


def open_request(rt: Runtime, token: str, kid: str) -> LinkChannel:
    """Decrypt a link's channel request and check that it names this link and its session.
    The caller must still refuse a spent ``jti`` and find the link alive (the relay does)."""
    kept = _kept(rt, kid)
    opened = cchannel.open_channel_request(
        lambda _kid: bytearray(kept.key),
        token,
        now=rt.clock().timestamp(),
        max_bytes=rt.settings.max_body_bytes,
        max_depth=rt.settings.json_max_depth,
        leeway_seconds=LEEWAY_SECONDS,
    )
    _check_owner(opened, kept.token_hash)
    expires = datetime.fromtimestamp(opened.exp + LEEWAY_SECONDS, UTC)
    return LinkChannel(request=opened, key=bytearray(kept.key), jti_expires=expires)


def forget(kid: str) -> None:
    """Drop a link's CK from this process (the link is gone)."""
    with _lock:
        _keys.pop(kid, None)


def _kept(rt: Runtime, kid: str) -> _Kept:
    with _lock:
        kept = _keys.get(kid)
        if kept is not None:
            _keys.move_to_end(kid)
            return kept
    with rt.engine.connect().execution_options(**{READ: True}) as conn:
        row = channel_row(conn, kid, kinds=(LINK,))
    if row is None or row.channel_key is None:
        raise ChannelClosed()
    now = rt.clock()
    if now >= row.expires_at or now >= row.idle_expires_at:
        raise ChannelClosed("The session has expired; sign in again.")
    key = rt.master_key.open(row.channel_key, aad=aad(LINK, kid))
    kept = _Kept(key=bytes(key), token_hash=row.token_hash)
    key[:] = bytes(len(key))
    with _lock:
        _keys[kid] = kept
        while len(_keys) > MAX_KEYS:
            _keys.popitem(last=False)
    return kept


def _check_owner(opened: cchannel.ChannelRequest, token_hash: str) -> None:
    token = opened.claims.get("token")
    digest = hashlib.sha256(str(token).encode()).hexdigest()
    if not hmac.compare_digest(digest, token_hash):
        raise ChannelMismatch("The request names another session than its channel.")
    if opened.claims.get("link_id") != opened.kid:
        raise ChannelMismatch("The request names another reader link than its channel.")
