"""Certifying a key generated on a PC/SC-personalised card (DESIGN §3.9, issue 17).

A card management system generates the key pairs on the card (9A, 9C) and cannot read the
private keys; it gives this service either a CSR the card signed (the signature proves the
key is the card's) or the public key itself. The built-in CA certifies it with the same
subject and profile as the cards it issues itself, the certificate is recorded on the card
(so the CRL and OCSP know it) and handed back for the card management system to write into
the card's certificate object. A certificate of the same usage it replaces is revoked as
superseded.
"""

from __future__ import annotations

from cardvault.crypto import x509 as cx509
from cardvault.crypto.csr import load_card_public_key
from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.vocabulary import CardStatus
from cardvault.errors import Conflict
from cardvault.services.audit import trail as audit
from cardvault.services.cards.issuance import certificate_row
from cardvault.services.cards.lookup import get_card
from cardvault.services.pki import ca
from cardvault.services.pki import crl as crls
from cardvault.services.pki.renewal import issue_for_card, supersede
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction

#: a card in these states has nothing to certify, or must not get a new certificate
_REFUSED = (CardStatus.REVOKED, CardStatus.SUSPENDED)


def public_key_of(*, csr_pem: bytes | None = None, key_pem: bytes | None = None) -> cx509.PublicKey:
    """The key to certify: from a CSR whose signature must verify, or a PEM public key."""
    return load_card_public_key(csr_pem=csr_pem, key_pem=key_pem)


def certify(
    rt: Runtime,
    actor: Actor,
    serial: str,
    usage: cx509.CertUsage,
    public_key: cx509.PublicKey,
    *,
    organisation_id: str | None = None,
) -> cx509.Certificate:
    """Issue and record the card's ``usage`` certificate for ``public_key``."""
    issuer = ca.load(rt)
    with rt.db() as session:
        card = get_card(session, serial, organisation_id=organisation_id)
        if card.status in _REFUSED:
            raise Conflict(f"Card {card.serial} is {card.status}; it cannot be certified.")
        cert = issue_for_card(rt, session, card, issuer, {usage: public_key})[usage]
    now = rt.clock()
    with transaction(rt.db) as session:
        card = get_card(session, serial, for_update=True)
        if card.status in _REFUSED:
            raise Conflict(f"Card {card.serial} is {card.status}; it cannot be certified.")
        replaced = supersede(session, card.id, now, usage)
        session.add(certificate_row(card.id, usage, cert))
        audit.record_for_card(
            session,
            rt,
            actor,
            card,
            action=AuditAction.CARD_CERTIFIED,
            details={
                "serial": card.serial,
                "usage": usage.value,
                "certificate_serial": cx509.serial_hex(cert.serial_number),
            },
        )
    if replaced:
        crls.publish_after_change(rt)
    return cert
