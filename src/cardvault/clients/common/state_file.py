"""A client's state in one JSON file that only its user can read (0600, in a 0700 directory).

Written to a temporary file and renamed, so a crash never leaves half a session; overwritten
before it is removed (best effort: a journalling or copy-on-write file system may keep old
blocks). Where: ``$XDG_STATE_HOME/<program>`` (``~/.local/state/<program>``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

from cardvault.errors import CardvaultError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = ["StateFile", "default_dir", "load", "remove", "write"]

T = TypeVar("T")
S = TypeVar("S", bound="DataclassInstance")


def default_dir(program: str) -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / program


def write(path: Path, state: DataclassInstance) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(asdict(state), fh)
    os.replace(tmp, path)
    return path


def load(
    path: Path,
    build: Callable[..., T],
    *,
    missing: CardvaultError,
    damaged: CardvaultError,
    drop_damaged: bool = False,
) -> T:
    """The state in ``path``; raises ``missing`` when there is none and ``damaged`` when it is
    not a state this program wrote (removing the file first with ``drop_damaged``)."""
    try:
        return build(**json.loads(path.read_text()))
    except FileNotFoundError:
        raise missing from None
    except (ValueError, TypeError) as exc:
        if drop_damaged:
            path.unlink(missing_ok=True)
        raise damaged from exc


def remove(path: Path) -> None:
    if path.exists():
        path.write_bytes(b"\0" * path.stat().st_size)
        path.unlink()


@dataclass(frozen=True, kw_only=True)
class StateFile(Generic[S]):
    """One program's state file: its name, what it holds and what to say when it is missing
    or damaged; the agent and the authenticator differ only in these."""

    program: str
    name: str
    build: Callable[..., S]
    missing: CardvaultError
    #: the error for a damaged file, given its path
    damaged: Callable[[Path], CardvaultError]
    drop_damaged: bool = False

    def default_dir(self) -> Path:
        return default_dir(self.program)

    def save(self, directory: Path, state: S) -> Path:
        return write(directory / self.name, state)

    def load(self, directory: Path) -> S:
        path = directory / self.name
        return load(
            path,
            self.build,
            missing=self.missing,
            damaged=self.damaged(path),
            drop_damaged=self.drop_damaged,
        )

    def remove(self, directory: Path) -> None:
        remove(directory / self.name)
