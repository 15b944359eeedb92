"""What the transport raises: spent envelopes and the session channel."""

from __future__ import annotations

from dataclasses import field

from cardvault.errors import (
    AuthenticationFailed,
    error,
)


@error
class ChannelClosed(AuthenticationFailed):
    """No live session or link has this channel: it ended, or never existed."""

    code = "channel_closed"

    message: str = field(default="This session's channel has ended; sign in again.", kw_only=False)
    remedy: str | None = field(default="Sign in again and use the new channel key.", init=False)


class ChannelMismatch(AuthenticationFailed):
    """The request names another session or link than the channel it came in."""

    code = "channel_mismatch"


class EnvelopeReplayed(AuthenticationFailed):
    """The envelope's id was seen before: a request is opened once."""

    code = "envelope_replayed"
