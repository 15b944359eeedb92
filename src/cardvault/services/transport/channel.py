"""Session channels on the service side (DESIGN §3.5 revised).

The answer that opens a card session, and the one that opens a PIV reader link, carries a
fresh channel key CK. The service keeps CK sealed under the master key in the session's (or
link's) row, so it dies with the row: logout, expiry, lock and revocation end the channel.
An in-session request is a ``dir``/A256GCM envelope with ``kid`` = the session or link id;
its ``jti`` is remembered like an opening envelope's, so a replay is refused.

A channel proves that the caller holds CK; when the claims also name a session token or a
link, they must name this channel's own, so one session's channel cannot carry another's
requests.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, bindparam, select, update

from cardvault.crypto import channel as cchannel
from cardvault.crypto.aead import aad, wipe
from cardvault.keystore.provider import MasterKey
from cardvault.services.system.runtime import Runtime
from cardvault.services.transport.envelopes import LEEWAY_SECONDS, remember_jti_in
from cardvault.services.transport.errors import ChannelClosed, ChannelMismatch
from cardvault.store.models import CardSession, PivLink, table_of

SESSION = "session-channel"
LINK = "link-channel"

_sessions = table_of(CardSession)
_links = table_of(PivLink)
_SESSION_CHANNEL = select(
    _sessions.c.channel_key,
    _sessions.c.token_hash,
    _sessions.c.expires_at,
    _sessions.c.idle_expires_at,
).where(_sessions.c.id == bindparam("kid"))
_LINK_CHANNEL = (
    select(
        _links.c.channel_key,
        _sessions.c.token_hash,
        _sessions.c.expires_at,
        _sessions.c.idle_expires_at,
    )
    .join(_sessions, _sessions.c.id == _links.c.session_id)
    .where(_links.c.id == bindparam("kid"))
)
_STATEMENTS = {SESSION: _SESSION_CHANNEL, LINK: _LINK_CHANNEL}


@dataclass(frozen=True, kw_only=True)
class Channel:
    """A checked channel request: its claims, and what the answer is sealed with."""

    request: cchannel.ChannelRequest
    key: bytearray


def new_key(master: MasterKey, kind: str, owner_id: str) -> tuple[bytearray, bytes]:
    """A fresh CK and its seal under the master key, bound to ``kind`` and the row's id."""
    key = cchannel.new_channel_key()
    return key, master.seal(key, aad=aad(kind, owner_id))


def link_key(rt: Runtime, link_id: str) -> bytes:
    """Give a reader link its channel key (when the link has just been opened); returned
    once, to the connector, inside the answer that opened the link."""
    key, sealed = new_key(rt.master_key, LINK, link_id)
    try:
        with rt.engine.begin() as conn:
            done = conn.execute(
                update(_links)
                .where(_links.c.id == link_id, _links.c.channel_key.is_(None))
                .values(channel_key=sealed)
            ).rowcount
        if done != 1:
            raise ChannelClosed("The reader link is gone.")
        return bytes(key)
    finally:
        wipe(key)


def open_request(rt: Runtime, token: str, kid: str) -> Channel:
    """Find the channel, decrypt the request under its CK, refuse a replay or a stranger.

    One short transaction: the channel's row is read and the ``jti`` remembered together
    (the decryption in between is one AES-GCM), not in a read and then a write of their own.
    """
    found: dict[str, object] = {}
    with rt.engine.begin() as conn:

        def key_for(kid_: str) -> bytearray:
            row, kind = _row(conn, kid_)
            if row is None or row.channel_key is None:
                raise ChannelClosed()
            now = rt.clock()
            if now >= row.expires_at or now >= row.idle_expires_at:
                raise ChannelClosed("The session has expired; sign in again.")
            found["token_hash"], found["kind"] = row.token_hash, kind
            found["key"] = key = rt.master_key.open(row.channel_key, aad=aad(kind, kid_))
            return key

        opened = cchannel.open_channel_request(
            key_for,
            token,
            now=rt.clock().timestamp(),
            max_bytes=rt.settings.max_body_bytes,
            max_depth=rt.settings.json_max_depth,
            leeway_seconds=LEEWAY_SECONDS,
        )
        key = found["key"]
        assert isinstance(key, bytearray)
        try:
            _check_owner(opened, str(found["token_hash"]), str(found["kind"]))
            expires = datetime.fromtimestamp(opened.exp + LEEWAY_SECONDS, UTC)
            remember_jti_in(conn, opened.jti, expires)
        except BaseException:
            wipe(key)
            raise
    return Channel(request=opened, key=key)


@dataclass(frozen=True)
class _Found:
    channel_key: bytes | None
    token_hash: str
    expires_at: datetime
    idle_expires_at: datetime


def _row(conn: Connection, kid: str) -> tuple[_Found | None, str]:
    """The channel's sealed key and its session's token hash and expiry: an indexed read
    by primary key."""
    for kind in (SESSION, LINK):
        row = channel_row(conn, kid, kinds=(kind,))
        if row is not None:
            return row, kind
    return None, LINK


def channel_row(conn: Connection, kid: str, *, kinds: tuple[str, ...]) -> _Found | None:
    """The first of these kinds of channel (session, link) with this ``kid``, or None."""
    for kind in kinds:
        row = conn.execute(_STATEMENTS[kind], {"kid": kid}).first()
        if row is not None:
            return _Found(*row)
    return None


def _check_owner(opened: cchannel.ChannelRequest, token_hash: str, kind: str) -> None:
    token = opened.claims.get("token")
    if token is not None:
        digest = hashlib.sha256(str(token).encode()).hexdigest()
        if not hmac.compare_digest(digest, token_hash):
            raise ChannelMismatch("The request names another session than its channel.")
    link_id = opened.claims.get("link_id")
    if kind == LINK and link_id is not None and link_id != opened.kid:
        raise ChannelMismatch("The request names another reader link than its channel.")
