"""The agent's session state: token and SK in a 0600 file in its state directory."""

from __future__ import annotations

from dataclasses import dataclass, field

from cardvault.clients.common import state_file
from cardvault.clients.common.replies import Reply
from cardvault.errors import NotFound


class NotSignedIn(NotFound):
    """This PC holds no session of the agent: sign in first (exit code 3)."""

    code = "not_signed_in"


@dataclass(kw_only=True)
class AgentState:
    server: str
    token: str = field(repr=False)
    session_key: str = field(repr=False)
    card_serial: str
    organisation: str
    expires_at: str
    #: "holder", or "ra" for an RA user's session (``login --ra``)
    purpose: str = "holder"
    #: for RA sessions: the organisation and role chosen after login
    acting_organisation: str | None = None
    acting_role: str | None = None
    #: the CA file the login trusted for the service (absolute); later commands use it
    #: unless given another, so that ``--ca-file`` is needed at login only
    ca_file: str | None = None
    #: the session channel (DESIGN §3.5 revised): its kid and CK, base64; kept like SK
    channel_id: str | None = None
    channel_key: str | None = field(default=None, repr=False)

    @classmethod
    def opened(cls, server: str, session: Reply, sk: str, purpose: str = "holder") -> AgentState:
        """The state of the card session the service just opened."""
        return cls(
            server=server,
            token=session.text("token"),
            session_key=sk,
            card_serial=session.text("card_serial"),
            organisation=session.text("organisation"),
            expires_at=session.text("expires_at"),
            purpose=purpose,
            channel_id=session.optional_text("channel_id"),
            channel_key=session.optional_text("channel_key"),
        )


FILE = state_file.StateFile(
    program="cardvault-agent",
    name="session.json",
    build=AgentState,
    missing=NotSignedIn("You are not signed in.", remedy="Run `cardvault-agent login` first."),
    damaged=lambda _path: NotSignedIn(
        "The saved session was damaged and has been removed.",
        remedy="Run `cardvault-agent login` again.",
    ),
    drop_damaged=True,
)
default_dir, save, load, clear = FILE.default_dir, FILE.save, FILE.load, FILE.remove
