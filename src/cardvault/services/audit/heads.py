"""Chain heads: locked for the appends of a transaction, written and signed once as it
commits, anchored outside the database once it has committed (DESIGN §3.7).

The first append to a chain in a transaction locks its head row (SELECT … FOR UPDATE on
PostgreSQL; SQLite's BEGIN IMMEDIATE serialises all writers) and reads the head from it;
appends then only INSERT their event, and the head they reach is kept in the session. The
head row itself is written once, as the transaction commits (a SQLAlchemy ``before_commit``
hook, installed on first use):

* **before the commit** every chain appended to since it was last signed gets its head row
  set to the head the transaction reached and signed with the audit key, in one UPDATE,
  under the lock taken at the first append: one Ed25519 signature per chain per transaction,
  however many events it holds. The anchor is asked first whether it can take lines. If any
  of this fails, the commit does not happen (fail closed: no signed head, no operation). A
  commit that skipped the hook would leave events beyond the signed head, which ``audit
  verify`` refuses.
* **after the commit** the signed heads are appended to the anchor (``audit_anchor``).

Why after, not before, the commit: an anchor written before could describe a transaction
that then fails to commit (a serialisation failure, a lost connection, a crash in between);
the anchored head would then never exist and the next transaction would write another event
at that position, and ``audit verify`` would report a rollback that never happened, on every
such failure, forever. Written after, the only window is a crash (or a failed write) between
the commit and the anchor: that transaction's heads stay unanchored until the chain's next
transaction anchors a later head, which covers them. A failed write is not skipped: it is
retried before the next audited commit, which is refused until it succeeds, and the caller
whose transaction it was is told (AnchorWriteFailed).

Savepoints: SQLAlchemy fires ``before_commit`` for a savepoint's release too, and cannot say
which is committing, so a release signs what the transaction appended before it (rare: the
audit's own savepoint, which creates a new chain's head row, does not count). A savepoint
rolled back may take appends and a signing with it: every chain the transaction touched is
then derived again from its events and signed at the commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError as DbIntegrityError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, SessionTransaction

from cardvault.crypto import signing
from cardvault.domain.audit_anchor import Anchor, AnchorKind, anchor_line, restore_message
from cardvault.domain.audit_chain import GENESIS, ChainHead, checkpoint_message, format_timestamp
from cardvault.errors import IntegrityError
from cardvault.services.audit.anchor import anchor_writer
from cardvault.services.audit.errors import AuditUnavailable, audit_write_failed
from cardvault.services.audit.signing_key import audit_private_key
from cardvault.services.system.runtime import Runtime
from cardvault.store.db import on_every_session
from cardvault.store.models import AuditEvent, AuditHead, table_of

_HEADS = "cardvault.audit.heads"
_PENDING = "cardvault.audit.pending"
_HEAD_TABLE = table_of(AuditHead)
_EVENT_TABLE = table_of(AuditEvent)
# Built once with bound parameters: SQLAlchemy then reuses the compiled statements.
_INSERT_HEAD = insert(_HEAD_TABLE)
_LOCK_HEAD = (
    select(_HEAD_TABLE.c.seq, _HEAD_TABLE.c.hash)
    .where(_HEAD_TABLE.c.chain == bindparam("head_chain"))
    .with_for_update()
)
_LAST_EVENT = (
    select(_EVENT_TABLE.c.seq, _EVENT_TABLE.c.hash)
    .where(_EVENT_TABLE.c.chain == bindparam("head_chain"))
    .order_by(_EVENT_TABLE.c.seq.desc())
    .limit(1)
)
_SIGN_HEAD = update(_HEAD_TABLE).where(_HEAD_TABLE.c.chain == bindparam("head_chain"))


def signing_key(rt: Runtime) -> signing.AuditKey:
    """The audit signing key; raises AuditUnavailable when it cannot be opened (nothing commits)."""
    try:
        return audit_private_key(rt)
    except IntegrityError as exc:
        raise AuditUnavailable(
            f"The audit key in {rt.settings.keys_dir} does not open under this data "
            "directory's master key, so no audit event can be written and nothing was done.",
            remedy="Restore the data directory from a backup.",
        ) from exc


# -- the head during a transaction -------------------------------------------------------


def locked_head(session: Session, chain: str) -> ChainHead:
    """The chain's head, its row locked for the rest of the transaction.

    Once read (and locked) in a transaction, the head is remembered for that transaction:
    the lock keeps other writers out, so later appends in it need not read it again. The
    memo is keyed by the innermost transaction, so a savepoint that ends (released or rolled
    back) makes the next append read it again: from the row if this transaction has not
    appended to the chain (the row is then exact), else from the chain's last event.
    """
    remembered = session.info.get(_HEADS, {}).get(chain)
    if remembered is not None and remembered[0] is _innermost(session):
        return cast(ChainHead, remembered[1])
    conn = session.connection()
    row = conn.execute(_LOCK_HEAD, {"head_chain": chain}).one_or_none()
    if row is None:
        _create_head(session, chain)
        row = conn.execute(_LOCK_HEAD, {"head_chain": chain}).one()
    pending = session.info.get(_PENDING)
    if pending is not None and chain in pending.touched:
        head = _last_event(session, chain)
    else:
        head = ChainHead(chain=chain, seq=row.seq, hash=row.hash)
    _remember_head(session, head)
    return head


def moved(session: Session, rt: Runtime, head: ChainHead) -> None:
    """An event was appended: the chain now ends at ``head``, written and signed at commit."""
    _remember_head(session, head)
    _pending(session, rt).appended(head.chain)


def _last_event(session: Session, chain: str) -> ChainHead:
    row = session.connection().execute(_LAST_EVENT, {"head_chain": chain}).one_or_none()
    if row is None:
        return ChainHead(chain=chain, seq=0, hash=GENESIS)
    return ChainHead(chain=chain, seq=row.seq, hash=row.hash)


def _create_head(session: Session, chain: str) -> None:
    """A new chain's head row. Two first events of one chain may race to create it: the
    loser's insert fails inside a savepoint and it then waits on the winner's row lock."""
    pending = session.info.get(_PENDING)
    if pending is not None:
        pending.quiet += 1  # releasing this savepoint is not a reason to sign anything
    try:
        with session.begin_nested():
            session.connection().execute(_INSERT_HEAD, {"chain": chain, "seq": 0, "hash": GENESIS})
    except DbIntegrityError:
        pass
    finally:
        if pending is not None:
            pending.quiet -= 1


def _remember_head(session: Session, head: ChainHead) -> None:
    session.info.setdefault(_HEADS, {})[head.chain] = (_innermost(session), head)


def _innermost(session: Session) -> object:
    """The transaction a remembered head belongs to: the savepoint if one is open."""
    return session.get_nested_transaction() or session.get_transaction()


# -- signing at commit, anchoring after it -----------------------------------------------


@dataclass(kw_only=True)
class _Pending:
    """A session's audit work between its first append and the end of its transaction."""

    rt: Runtime
    #: every chain appended to in this transaction
    touched: set[str] = field(default_factory=set)
    #: chains whose head row may be behind or unsigned (appended to, or rolled back, since)
    dirty: set[str] = field(default_factory=set)
    #: chain -> restored_to, for an acknowledged restore committed in this transaction
    restores: dict[str, int] = field(default_factory=dict)
    #: the newest signed head of each chain, to anchor after the commit
    anchors: dict[str, Anchor] = field(default_factory=dict)
    #: above 0 while the audit's own savepoint (a new head row) is open
    quiet: int = 0

    def appended(self, chain: str) -> None:
        self.touched.add(chain)
        self.dirty.add(chain)


def _pending(session: Session, rt: Runtime) -> _Pending:
    pending = session.info.get(_PENDING)
    if pending is None:
        _install_hooks()
        pending = session.info[_PENDING] = _Pending(rt=rt)
    return cast(_Pending, pending)


def _install_hooks() -> None:
    """On every Session (a session without audit work costs one dict lookup per commit)."""
    on_every_session(
        ("before_commit", _before_commit),
        ("after_commit", _after_commit),
        ("after_rollback", _after_rollback),
        ("after_transaction_end", _after_transaction_end),
    )


def acknowledge_restore(session: Session, chain: str, restored_to: int) -> None:
    """Anchor this transaction's head of ``chain`` as an acknowledged restore."""
    pending = session.info.get(_PENDING)
    if pending is None or chain not in pending.touched:
        raise RuntimeError("record the acknowledgement in the chain first")
    pending.restores[chain] = restored_to


def _before_commit(session: Session) -> None:
    pending: _Pending | None = session.info.get(_PENDING)
    if pending is None or not pending.dirty or pending.quiet:
        return
    anchor_writer(pending.rt).ready()
    key = signing_key(pending.rt)
    signed_at = format_timestamp(pending.rt.clock())
    try:
        for chain in sorted(pending.dirty):
            _sign(session, pending, key, chain, signed_at)
    except SQLAlchemyError as exc:
        raise audit_write_failed(exc, "The signed audit head") from exc
    pending.dirty.clear()


def _sign(
    session: Session, pending: _Pending, key: signing.AuditKey, chain: str, signed_at: str
) -> None:
    head = _head_now(session, chain)
    if head is None:  # the savepoint that held the chain's events was rolled back
        pending.anchors.pop(chain, None)
        return
    signature = signing.sign_ed25519(key, checkpoint_message(head, signed_at))
    session.connection().execute(
        _SIGN_HEAD,
        {
            "head_chain": chain,
            "seq": head.seq,
            "hash": head.hash,
            "signed_at": signed_at,
            "signature": signature,
        },
    )
    restored_to = pending.restores.get(chain)
    if restored_to is not None:  # the anchor says the chain was restored, signed as such
        signature = signing.sign_ed25519(key, restore_message(head, restored_to, signed_at))
    pending.anchors[chain] = Anchor(
        kind=AnchorKind.HEAD if restored_to is None else AnchorKind.RESTORE,
        chain=head.chain,
        seq=head.seq,
        hash=head.hash,
        signature=signature,
        signed_at=signed_at,
        restored_to=restored_to,
    )


def _head_now(session: Session, chain: str) -> ChainHead | None:
    """The head as this transaction leaves it: remembered if the last append was in the
    innermost transaction, else derived from the events (a savepoint in between may have
    been rolled back, and with it the row lock: lock the row again)."""
    remembered = session.info.get(_HEADS, {}).get(chain)
    head: ChainHead | None
    if remembered is not None and remembered[0] is _innermost(session):
        head = cast(ChainHead, remembered[1])
    elif session.connection().execute(_LOCK_HEAD, {"head_chain": chain}).one_or_none():
        head = _last_event(session, chain)
    else:
        head = None
    return head if head is not None and head.seq else None


def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint was released: the transaction goes on
        return
    pending: _Pending | None = session.info.get(_PENDING)
    if pending is None or not pending.anchors:
        return
    lines = [anchor_line(a) for _, a in sorted(pending.anchors.items())]
    pending.anchors.clear()
    anchor_writer(pending.rt).write(lines)


def _after_rollback(session: Session) -> None:
    """A rolled-back savepoint may take appends or a signing with it: derive and sign
    every chain the transaction touched again at the commit."""
    pending: _Pending | None = session.info.get(_PENDING)
    if pending is not None:
        pending.dirty |= pending.touched


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_PENDING, None)
        session.info.pop(_HEADS, None)
