"""Everything the master key seals, and the AAD each blob is bound to.

The AADs are those the owning modules seal with (``cards/sealing``, ``cards/methods``,
``devices/channel``, ``notifications/outbox``, ``piv/secrets``, ``piv/recheck``,
``transport/channel``; the key files of ``pki/``, ``audit/`` and ``transport/``): a blob
re-sealed under another AAD would not open again, and the rotation's own check (every
blob opened before it is replaced) fails loudly on a mistake here rather than quietly.
A new sealed column must be added here too; ``tests/integration/rotation`` checks that
every LargeBinary column of the models is either listed or known not to be sealed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Table

from cardvault.crypto.aead import aad
from cardvault.store.models import (
    Association,
    Card,
    CardSession,
    Device,
    Notification,
    PivCard,
    PivLink,
)
from cardvault.store.models.base import table_of


@dataclass(frozen=True, kw_only=True)
class SealedColumn:
    """One column of blobs sealed under the master key."""

    name: str
    table: Table
    key: str
    blob: str
    aad_of: Callable[[Any], bytes]
    extra: tuple[str, ...] = ()
    #: what else to set when a blob is re-sealed under version ``v``
    also: Callable[[int], dict[str, int]] | None = None


def _bound_to_id(label: str) -> Callable[[Any], bytes]:
    """The AAD of a blob bound to its row's id alone."""
    return lambda row: aad(label, row.id)


COLUMNS = (
    SealedColumn(
        name="card records",
        table=table_of(Card),
        key="id",
        blob="key_record",
        extra=("record_version",),
        aad_of=lambda r: aad("card-record", r.id, r.record_version),
        also=lambda v: {"mk_version": v},
    ),
    SealedColumn(
        name="PIV secrets",
        table=table_of(PivCard),
        key="card_id",
        blob="secrets",
        extra=("secrets_version",),
        aad_of=lambda r: aad("piv-secrets", r.card_id, r.secrets_version),
    ),
    *(
        SealedColumn(
            name=name,
            table=table_of(model),
            key="id",
            blob=blob,
            aad_of=_bound_to_id(label),
        )
        # the columns whose blobs are bound to their row's id alone: (name, model, column, AAD)
        for name, model, blob, label in (
            ("method secrets", Association, "sealed_secret", "association-secret"),
            ("device secrets", Device, "sealed_totp_secret", "device-totp"),
            ("message secrets", Notification, "sealed_secrets", "notification-secrets"),
            ("session channel keys", CardSession, "channel_key", "session-channel"),
            ("reader link channel keys", PivLink, "channel_key", "link-channel"),
            ("PIN re-check tags", PivLink, "pin_recheck", "piv-pin-recheck"),
        )
    ),
)

#: LargeBinary columns that are *not* sealed under the master key (wrapped under session
#: keys, or public): named so that the completeness test can tell them from a forgotten one
NOT_SEALED = frozenset(
    {
        "card_sessions.session_wrap",
        "auth_transactions.session_wrap",
        "piv_links.issuance_wrap",
        "piv_links.last_response",
        "devices.public_key_der",
        "crls.der",
        "audit_checkpoints.signature",
        "audit_heads.signature",
    }
)


@dataclass(frozen=True, kw_only=True)
class SealedFile:
    """A key file sealed under the master key, with the AAD it is bound to."""

    path: Path
    aad: bytes


def files(data_dir: Path, keys_dir: Path) -> Iterator[SealedFile]:
    """The key files sealed under the master key (CA, previous CAs, OCSP responder, audit
    and transport keys)."""
    ca = data_dir / "ca"
    for path, label in (
        (ca / "ca-key.sealed", aad("ca-key", 1)),
        (ca / "ocsp-responder.sealed", aad("ocsp-responder", 1)),
        (keys_dir / "audit-key.sealed", aad("audit-key", 1)),
    ):
        if path.exists():
            yield SealedFile(path=path, aad=label)
    for path in sorted(ca.glob("ocsp-responder-*.sealed")):
        yield SealedFile(path=path, aad=aad("ocsp-responder", 1))
    for path in sorted((ca / "previous").glob("*.key.sealed")):
        yield SealedFile(path=path, aad=aad("ca-key", 1))
    for path in sorted((keys_dir / "transport").glob("*.sealed")):
        yield SealedFile(path=path, aad=aad("transport-key", path.stem))
