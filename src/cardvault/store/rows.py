"""Rows into frozen views: the one place a view copies a row's columns.

A service hands the shells a frozen dataclass, never the row; most of a view's fields are the
row's columns under the same names, and only a few are derived. ``view_of`` copies the
same-named columns and takes the derived ones as keywords, so a view lists its fields once.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from typing import Any, TypeVar

T = TypeVar("T")


def view_of(cls: type[T], row: object, **derived: Any) -> T:
    """A ``cls`` whose fields are ``row``'s attributes of the same names, except those given
    in ``derived``."""
    assert is_dataclass(cls)
    copied = {f.name: getattr(row, f.name) for f in fields(cls) if f.name not in derived}
    return cls(**copied, **derived)
