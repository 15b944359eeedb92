"""A client's state in one JSON file that only its user can read (0600, in a 0700 directory).

Written to a temporary file and renamed, so a crash never leaves half a session; removed by
overwriting it first, so the token and keys do not linger in the freed blocks of a simple
file system. Where: ``$XDG_STATE_HOME/<program>`` (``~/.local/state/<program>``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = ["Damaged", "default_dir", "read", "remove", "write"]

T = TypeVar("T")


class Damaged(Exception):
    """The file is there but is not a state this program wrote."""


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


def read(path: Path, build: Callable[..., T]) -> T:
    """The state in ``path``; FileNotFoundError when there is none, Damaged when unreadable."""
    try:
        return build(**json.loads(path.read_text()))
    except FileNotFoundError:
        raise
    except (ValueError, TypeError) as exc:
        raise Damaged(str(path)) from exc


def remove(path: Path) -> None:
    if path.exists():
        path.write_bytes(b"\0" * path.stat().st_size)
        path.unlink()
