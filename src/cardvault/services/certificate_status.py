"""Certificate status for relying parties: is this card certificate still good?"""

from __future__ import annotations

from sqlalchemy import select

from cardvault.errors import InvalidInput
from cardvault.services.cards import stored_serial
from cardvault.services.runtime import Runtime
from cardvault.store.models import Card, Certificate


def status_by_fingerprint(rt: Runtime, fingerprint: str) -> dict[str, object]:
    fp = fingerprint.strip().lower().replace(":", "")
    if len(fp) != 64 or any(c not in "0123456789abcdef" for c in fp):
        raise InvalidInput(
            "fingerprint is the SHA-256 of the certificate, 64 hex digits.", field="fingerprint"
        )
    with rt.db() as session:
        cert = session.scalar(select(Certificate).where(Certificate.fingerprint_sha256 == fp))
        if cert is None:
            return {"status": "unknown", "fingerprint_sha256": fp}
        card = session.get(Card, cert.card_id)
        good = cert.status == "valid" and card is not None and card.status != "revoked"
        return {
            "status": "good" if good else "revoked",
            "fingerprint_sha256": fp,
            "serial": stored_serial(cert),
            "usage": cert.usage,
            "revoked_at": cert.revoked_at.isoformat() if cert.revoked_at else None,
            "checked_at": rt.clock().isoformat(),
        }
