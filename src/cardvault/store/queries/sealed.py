"""Blobs sealed under the master key, read in batches and replaced one by one while the
key is rotated (``services/rotation/master``).

A blob is replaced only if it is still the one that was re-sealed: ``UPDATE … SET blob =
:new WHERE id = :id AND blob = :old``. A sign-in, a passcode change or a new session that
wrote the row meanwhile wins (its blob stays, sealed under whichever version that instance
used), and the next pass looks at the row again. So the rotation never undoes a change,
and no lock is held for longer than one row's statement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Column, Row, Table, select, update
from sqlalchemy.orm import Session


def batch(
    session: Session,
    table: Table,
    key: str,
    blob: str,
    extra: Sequence[str],
    *,
    after: str | None,
    size: int,
) -> Sequence[Row[Any]]:
    """The next ``size`` rows holding a blob, by primary key after ``after``."""
    pk: Column[Any] = table.c[key]
    query = (
        select(pk, table.c[blob], *(table.c[name] for name in extra))
        .where(table.c[blob].is_not(None))
        .order_by(pk)
        .limit(size)
    )
    if after is not None:
        query = query.where(pk > after)
    return session.execute(query).all()


def replace(
    session: Session,
    table: Table,
    key: str,
    blob: str,
    row_id: str,
    *,
    old: bytes,
    new: bytes,
    also: Mapping[str, int] | None = None,
) -> bool:
    """Swap ``old`` for ``new`` if the row still holds ``old``; whether it did."""
    done = session.execute(
        update(table)
        .where(table.c[key] == row_id, table.c[blob] == old)
        .values({blob: new, **(also or {})})
        .returning(table.c[key])
    ).first()
    return done is not None
