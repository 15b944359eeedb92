"""What the transport raises: spent envelopes and the session channel."""

from __future__ import annotations

from cardvault.errors import (
    AuthenticationFailed,
)


class ChannelClosed(AuthenticationFailed):
    """No live session or link has this channel: it ended, or never existed."""

    code = "channel_closed"

    def __init__(self, message: str = "This session's channel has ended; sign in again.") -> None:
        super().__init__(message, remedy="Sign in again and use the new channel key.")


class ChannelMismatch(AuthenticationFailed):
    """The request names another session or link than the channel it came in."""

    code = "channel_mismatch"


class EnvelopeReplayed(AuthenticationFailed):
    """The envelope's id was seen before: a request is opened once."""

    code = "envelope_replayed"
