"""The CRL of the built-in CA: re-signed on every revocation, suspension and lifted
suspension, and whenever it is fetched after half its ``crl_hours`` lifetime has passed, so
a relying party never holds one past its nextUpdate.

The number and the document live in the database (table ``crls``), not in an instance:
every instance serves the same CRL. Issuing takes the CA's row lock first (the UPDATE),
then reads the revocations: two revocations at once each end with a CRL that holds both,
and the higher number is always the fuller list.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError as DbIntegrityError
from sqlalchemy.orm import Session

from cardvault.crypto import crl as ccrl
from cardvault.crypto import x509 as cx509
from cardvault.domain.vocabulary import CardStatus
from cardvault.errors import NotFound
from cardvault.services.pki import ca
from cardvault.services.system.runtime import Runtime
from cardvault.store.db import transaction
from cardvault.store.models import Card, Certificate, CrlState

log = logging.getLogger("cardvault.pki")

#: certificate states that end a certificate ("replaced": a PC/SC card got a new one)
ENDED = ("revoked", "on_hold", "replaced")


def revocation_of(row: Certificate, card: Card | None) -> tuple[datetime, str] | None:
    """When and why (RFC 5280 reason name) the certificate stopped being good; None while it
    is good. A revoked card ends its certificates even where their rows say otherwise."""
    if row.status == "valid" and card is not None and card.status != CardStatus.REVOKED:
        return None
    if row.status == "on_hold":
        reason = ccrl.HOLD
    elif row.status == "replaced":
        reason = row.revocation_reason or "superseded"
    else:
        reason = row.revocation_reason or "unspecified"
    when = row.revoked_at or (card.status_changed_at if card is not None else row.created_at)
    return when, reason


@dataclass(frozen=True, kw_only=True)
class CrlDocument:
    """A signed CRL as it is served: DER, number and validity."""

    der: bytes
    number: int
    this_update: datetime
    next_update: datetime

    @property
    def etag(self) -> str:
        """An ETag for the DER, so that clients fetch a CRL only when it changed."""
        return '"' + hashlib.sha256(self.der).hexdigest()[:32] + '"'


def publish_after_change(rt: Runtime) -> None:
    """Re-sign after a revocation, suspension or renewal that is already committed: a
    failure here (the CA key unreadable, the database gone) must not report the change
    itself as failed. It is logged, and the next fetch re-signs (see :func:`current`)."""
    try:
        publish(rt)
    except Exception:
        log.exception("the CRL could not be re-signed after a change; the next fetch will")


def publish(rt: Runtime) -> CrlDocument | None:
    """Re-sign the CRL of every CA that can still sign (the current one, and rotated ones
    that keep their key); the current CA's, or None without a built-in CA."""
    documents = [publish_for(rt, issuer) for issuer in ca.signing_cas(rt)]
    return documents[0] if documents and ca.exists(rt.data_dir) else None


def publish_for(rt: Runtime, issuer: ca.IssuingCa) -> CrlDocument:
    """Re-sign one CA's CRL now."""
    key_id = cx509.ca_key_id(issuer.cert)
    for _attempt in range(3):
        try:
            return _publish(rt, issuer, key_id)
        except DbIntegrityError:  # another instance created the row first: take it in turn
            continue
    return _publish(rt, issuer, key_id)


def _publish(rt: Runtime, issuer: ca.IssuingCa, key_id: str) -> CrlDocument:
    now = rt.clock().astimezone(UTC).replace(microsecond=0)
    next_update = now + timedelta(hours=rt.settings.crl_hours)
    with transaction(rt.db) as session:
        number = _next_number(session, key_id, now)
        rows = session.execute(
            select(Certificate, Card)
            .join(Card, Card.id == Certificate.card_id)
            .where(
                Certificate.ca_key_id == key_id,
                Certificate.not_after > now,
                or_(Certificate.status.in_(ENDED), Card.status == CardStatus.REVOKED),
            )
        ).all()
        entries = []
        for row, card in rows:
            ended = revocation_of(row, card)
            if ended is not None:
                entries.append(
                    ccrl.RevokedEntry(
                        serial=int(row.serial_hex, 16), revoked_at=ended[0], reason=ended[1]
                    )
                )
        der = ccrl.build_crl(
            ca_key=issuer.key,
            ca_cert=issuer.cert,
            entries=entries,
            number=number,
            this_update=now,
            next_update=next_update,
        )
        session.execute(
            update(CrlState)
            .where(CrlState.ca_key_id == key_id)
            .values(this_update=now, next_update=next_update, der=der)
        )
    return CrlDocument(der=der, number=number, this_update=now, next_update=next_update)


def _next_number(session: Session, key_id: str, now: datetime) -> int:
    """Lock the CA's CRL row and take the next number (1 for the first CRL)."""
    number = session.execute(
        update(CrlState)
        .where(CrlState.ca_key_id == key_id)
        .values(number=CrlState.number + 1)
        .returning(CrlState.number)
    ).scalar()
    if number is not None:
        return int(number)
    session.add(CrlState(ca_key_id=key_id, number=1, this_update=now, next_update=now, der=b""))
    session.flush()
    return 1


def current(rt: Runtime, key_id: str) -> CrlDocument:
    """The CRL to serve for the CA ``key_id``: the stored one while fresh, else a new one."""
    signers = {cx509.ca_key_id(i.cert): i for i in ca.signing_cas(rt)}
    with rt.db() as session:
        row = session.get(CrlState, key_id)
        doc = _document(row) if row is not None and row.der else None
    issuer = signers.get(key_id)
    if issuer is None:
        if doc is None:
            raise NotFound("This service publishes no CRL for that CA.")
        return doc  # a replaced CA's last CRL: its key is gone, it cannot be re-signed
    now = rt.clock()
    if (
        doc is None
        or now >= doc.this_update + (doc.next_update - doc.this_update) / 2
        or _revoked_since(rt, key_id, doc.this_update)
    ):
        return publish_for(rt, issuer)
    return doc


def _document(row: CrlState) -> CrlDocument:
    return CrlDocument(
        der=row.der, number=row.number, this_update=row.this_update, next_update=row.next_update
    )


def _revoked_since(rt: Runtime, key_id: str, moment: datetime) -> bool:
    """Whether a certificate of the CA was revoked or put on hold after ``moment`` (a CRL
    that missed it, because re-signing failed after the change, is not served)."""
    with rt.db() as session:
        latest = session.scalar(
            select(func.max(Certificate.revoked_at)).where(Certificate.ca_key_id == key_id)
        )
    return latest is not None and latest > moment
