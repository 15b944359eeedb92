"""The agent's session state: token and SK in a 0600 file in its state directory."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cardvault.errors import CardvaultError

FILE = "session.json"


class NotSignedIn(CardvaultError):
    code = "not_signed_in"
    exit_code = 3


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


def default_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "cardvault-agent"


def save(directory: Path, state: AgentState) -> Path:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / FILE
    tmp = directory / f".{FILE}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(asdict(state), fh)
    os.replace(tmp, path)
    return path


def load(directory: Path) -> AgentState:
    path = directory / FILE
    try:
        data = json.loads(path.read_text())
        return AgentState(**data)
    except FileNotFoundError:
        raise NotSignedIn(
            "You are not signed in.", remedy="Run `cardvault-agent login` first."
        ) from None
    except (ValueError, TypeError) as exc:
        path.unlink(missing_ok=True)
        raise NotSignedIn(
            "The saved session was damaged and has been removed.",
            remedy="Run `cardvault-agent login` again.",
        ) from exc


def clear(directory: Path) -> None:
    path = directory / FILE
    if path.exists():
        path.write_bytes(b"\0" * path.stat().st_size)
        path.unlink()
