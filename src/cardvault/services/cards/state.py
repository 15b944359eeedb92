"""Reading a card's state, and the external-CA path (CSR out, certificate in)."""

from __future__ import annotations

from sqlalchemy import select

from cardvault.crypto import imported_certificate
from cardvault.crypto import keys as ckeys
from cardvault.crypto import x509 as cx509
from cardvault.crypto.csr import csr_public_key_der
from cardvault.domain.audit_actions import AuditAction
from cardvault.errors import Conflict, InvalidInput, NotFound
from cardvault.services.audit import trail as audit
from cardvault.services.cards.issuance import certificate_row
from cardvault.services.cards.lookup import get_card
from cardvault.services.cards.views import (
    CardInfo,
    CardView,
    CertificateInfo,
    HolderInfo,
    MethodView,
    SlotInfo,
)
from cardvault.services.pki import ca
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import (
    Association,
    Certificate,
    CertificateRequest,
    KeySlotInfo,
    Person,
)


def stored_serial(cert: Certificate) -> str:
    """The serial as ``serial_hex`` writes it (rows stored before it hold lower-case hex
    without the leading zero)."""
    return cx509.serial_hex(int(cert.serial_hex, 16))


def show(rt: Runtime, serial: str, *, organisation_id: str | None = None) -> CardView:
    """A card by serial (in one organisation, when given); NotFound."""
    with rt.db() as session:
        card = get_card(session, serial, organisation_id=organisation_id)
        person = session.get(Person, card.person_id)
        assert person is not None
        certs = session.scalars(
            select(Certificate)
            .where(Certificate.card_id == card.id)
            .order_by(Certificate.created_at)
        )
        slots = session.scalars(
            select(KeySlotInfo).where(KeySlotInfo.card_id == card.id).order_by(KeySlotInfo.name)
        )
        assoc = select(Association).where(Association.card_id == card.id)
        if organisation_id is not None:
            assoc = assoc.where(Association.organisation_id == organisation_id)
        csrs = session.scalars(
            select(CertificateRequest.usage).where(
                CertificateRequest.card_id == card.id, CertificateRequest.status == "pending"
            )
        )
        return CardView(
            card=CardInfo.of(card),
            holder=HolderInfo.of(person),
            certificates=tuple(CertificateInfo.of(c) for c in certs),
            slots=tuple(SlotInfo.of(s) for s in slots),
            associations=tuple(MethodView.of(a) for a in session.scalars(assoc)),
            pending_csrs=tuple(csrs),
        )


def certificates_pem(rt: Runtime, serial: str) -> dict[str, str]:
    """The card's current certificates as PEM, by usage; raises NotFound for an unknown card."""
    with rt.db() as session:
        card = get_card(session, serial)
        return {
            c.usage: c.pem
            for c in session.scalars(
                select(Certificate).where(
                    Certificate.card_id == card.id, Certificate.status == "valid"
                )
            )
        }


def export_csr(rt: Runtime, serial: str, usage: str) -> str:
    """The CSR kept for an external CA; raises NotFound when the card or the CSR is missing."""
    with rt.db() as session:
        card = get_card(session, serial)
        csr = session.scalar(
            select(CertificateRequest).where(
                CertificateRequest.card_id == card.id,
                CertificateRequest.usage == _usage(usage).value,
                CertificateRequest.status == "pending",
            )
        )
        if csr is None:
            raise NotFound(f"Card {card.serial} has no pending {usage} certificate request.")
        return csr.csr_pem


def import_certificate(
    rt: Runtime,
    actor: Actor,
    serial: str,
    usage: str,
    cert_pem: bytes,
    *,
    check_issuer: bool = False,
) -> dict[str, str | None]:
    """Install the certificate an external CA returned for one of the card's keys."""
    role = _usage(usage)
    with transaction(rt.db) as session:
        card = get_card(session, serial, for_update=True)
        req = session.scalar(
            select(CertificateRequest).where(
                CertificateRequest.card_id == card.id,
                CertificateRequest.usage == role.value,
                CertificateRequest.status == "pending",
            )
        )
        if req is None:
            raise Conflict(f"Card {card.serial} is not waiting for a {role.value} certificate.")
        public = ckeys.load_public_key_der(_csr_public_key(req.csr_pem))
        issuer = ca.load(rt).cert if check_issuer else None
        cert = imported_certificate.check_imported_certificate(
            cert_pem, expected_public_key=public, usage=role, ca_cert=issuer, now=rt.clock()
        )
        session.add(certificate_row(card.id, role, cert))
        req.status = "done"
        audit.record_for_card(
            session,
            rt,
            actor,
            card,
            action=AuditAction.CARD_CERTIFICATE_IMPORTED,
            details={"usage": role.value, "serial": cx509.serial_hex(cert.serial_number)},
        )
    return cx509.certificate_summary(cert)


def _csr_public_key(csr_pem: str) -> bytes:
    return csr_public_key_der(csr_pem.encode())


def _usage(text: str) -> cx509.CertUsage:
    try:
        return cx509.CertUsage(text.strip().lower().replace("-", "_"))
    except ValueError as exc:
        raise InvalidInput(
            "The usage is authentication or content-commitment.", field="usage"
        ) from exc
