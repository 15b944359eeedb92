"""Certificate status for relying parties: is this card certificate still good?

"good" only for a certificate this service's CA issued (DESIGN §3.9): a card's certificate
row may also hold one that a card management system wrote onto a PC/SC-personalised card, or
one an external CA returned, and this service cannot vouch for those. They are "unknown",
as for a certificate never seen, and with no details: RFC 6960 uses the same word when the
responder does not serve the issuer.
"""

from __future__ import annotations

from sqlalchemy import select

from cardvault.crypto import x509 as cx509
from cardvault.crypto.cert_errors import CertificateUntrustedIssuer
from cardvault.domain.vocabulary import CardStatus
from cardvault.errors import InvalidInput
from cardvault.services.cards.state import stored_serial
from cardvault.services.pki import ca
from cardvault.services.system.runtime import Runtime
from cardvault.store.models import Card, Certificate


def status_by_fingerprint(rt: Runtime, fingerprint: str) -> dict[str, object]:
    """A certificate's status by its SHA-256 fingerprint; raises InvalidInput for a
    malformed one. Only this CA's certificates are good or revoked, others unknown."""
    fp = fingerprint.strip().lower().replace(":", "")
    if len(fp) != 64 or any(c not in "0123456789abcdef" for c in fp):
        raise InvalidInput(
            "fingerprint is the SHA-256 of the certificate, 64 hex digits.", field="fingerprint"
        )
    with rt.db() as session:
        cert = session.scalar(select(Certificate).where(Certificate.fingerprint_sha256 == fp))
        if cert is None or not _issued_here(rt, cert.pem):
            return {"status": "unknown", "fingerprint_sha256": fp}
        card = session.get(Card, cert.card_id)
        return {
            "status": _word(cert, card),
            "fingerprint_sha256": fp,
            "serial": stored_serial(cert),
            "usage": cert.usage,
            "revoked_at": cert.revoked_at.isoformat() if cert.revoked_at else None,
            "checked_at": rt.clock().isoformat(),
        }


def _word(cert: Certificate, card: Card | None) -> str:
    """good, suspended (on hold: an RA may lift it) or revoked. A revoked card ends its
    certificates whatever their rows say; a suspended one is not revoked, and a relying
    party deciding whether to ask again later needs the difference (OCSP says revoked
    with reason certificateHold, the RFC's way of saying the same)."""
    if card is None or card.status == CardStatus.REVOKED:
        return "revoked"
    if cert.status == "on_hold":
        return "suspended"
    return "good" if cert.status == "valid" else "revoked"


def _issued_here(rt: Runtime, pem: str) -> bool:
    """Whether one of this service's CA keys signed the certificate (not only named it)."""
    cert = cx509.load_certificate_pem(pem.encode())
    for ca_cert in ca.issuing_certificates(rt):
        try:
            cx509.check_issued_by(cert, ca_cert)
        except CertificateUntrustedIssuer:
            continue
        return True
    return False
