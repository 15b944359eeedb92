"""Opening request envelopes with replay protection (DESIGN §3.5).

``jti`` values are kept until their envelope expires; a second use of one is refused. The
INSERT on a primary key is the check, so two instances racing with the same envelope cannot
both win.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError as DbIntegrityError

from cardvault.crypto import envelope
from cardvault.services.system.runtime import Runtime
from cardvault.services.transport import keys as transport_keys
from cardvault.services.transport.errors import EnvelopeReplayed
from cardvault.store.db import transaction
from cardvault.store.models import UsedNonce, table_of

#: how far a client's clock (or another instance's) may be off from ours; an envelope's
#: ``jti`` is remembered until ``exp`` plus this, so a replay inside it is still refused.
#: 120 s: a clock 90 s off (issue 20's skew fault) must not turn a 60-second envelope away
LEEWAY_SECONDS = 120
# one INSERT per encrypted request: built once, so SQLAlchemy reuses its compiled form
_REMEMBER_NONCE = insert(table_of(UsedNonce))


def open_request(rt: Runtime, token: str) -> envelope.OpenedRequest:
    """Open an envelope addressed to a transport key, once; raises EnvelopeReplayed for a
    second time, and the envelope's own refusals (EnvelopeBroken, EnvelopeExpired, …)."""
    opened = envelope.open_request(
        transport_keys.keys(rt),
        token,
        now=rt.clock().timestamp(),
        max_bytes=rt.settings.max_body_bytes,
        max_depth=rt.settings.json_max_depth,
        leeway_seconds=LEEWAY_SECONDS,
    )
    remember_jti(rt, opened.jti, datetime.fromtimestamp(opened.exp + LEEWAY_SECONDS, UTC))
    return opened


def remember_jti(rt: Runtime, jti: str, expires: datetime) -> None:
    """Keep ``jti`` until ``expires``; a second use is EnvelopeReplayed (the primary key
    decides, so two instances racing with one envelope cannot both win)."""
    try:
        with rt.engine.begin() as conn:
            conn.execute(_REMEMBER_NONCE, {"nonce": jti[:100], "expires_at": expires})
    except DbIntegrityError as exc:
        raise EnvelopeReplayed("This request was already received once; it is refused.") from exc


def purge_nonces(rt: Runtime) -> int:
    """Delete the spent envelope ids that have expired; how many."""
    with transaction(rt.db) as session:
        result = session.execute(delete(UsedNonce).where(UsedNonce.expires_at < rt.clock()))
    return int(getattr(result, "rowcount", 0) or 0)
