"""Renewing a card's certificates (DESIGN §3.9).

Two ways, because only the holder can open the card's keys (the DEK opens with the holder's
secrets alone, DESIGN §3.1):

- **The holder renews** in a signed-in session (``cardvault-agent renew``): new key pairs are
  generated inside the service and sealed under the card's DEK in place of the old ones
  (which are destroyed), the CA certifies them, and the old certificates are revoked with
  reason superseded. Passcode, slots and methods are untouched.
- **An RA renews** from the card's page: the CA certifies the card's *current* public keys
  again (new serials, a fresh validity from the organisation's policy, today's profile —
  the UPN and SID of an AD association added since); the old certificates are revoked as
  superseded. New keys wait for the holder's own renewal.

Either way the CRL is re-signed at once, and the action is audited. A key-management key
(PIV 9D, organisation policy) is never replaced by the holder's renewal -- mail encrypted to
it must stay readable -- so its certificate stays; the RA's renewal certifies it again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cardvault.crypto import keys as ckeys
from cardvault.crypto import x509 as cx509
from cardvault.crypto.aead import wipe
from cardvault.crypto.keyslots import CardKeyRecord, WrongSecret, seal_private_key, unwrap_session
from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.vocabulary import CardStatus
from cardvault.errors import Conflict
from cardvault.services.audit import trail as audit
from cardvault.services.cards.issuance import ROLES, card_subject, certificate_row
from cardvault.services.cards.lookup import get_card
from cardvault.services.cards.sealing import open_record, seal_record
from cardvault.services.pki import ca
from cardvault.services.pki import crl as crls
from cardvault.services.pki import links as pki_links
from cardvault.services.pki.errors import NotRenewable
from cardvault.services.signin import sessions as card_sessions
from cardvault.services.signin.errors import SessionInvalid
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import Card, Certificate, Organisation, Person
from cardvault.store.queries.organisations import policy_of

#: statuses whose certificates may be renewed (a suspended card is lifted first)
RENEWABLE = (CardStatus.ISSUED, CardStatus.ENROLLED, CardStatus.ACTIVE)


@dataclass(frozen=True, kw_only=True)
class Renewed:
    """A card's certificates renewed (with new keys or the same)."""

    serial: str
    new_keys: bool
    certificates: list[dict[str, object]] = field(default_factory=list)


def renew_in_session(rt: Runtime, actor: Actor, token: str, session_key: bytes) -> Renewed:
    """The holder's renewal: new keys and certificates, the old ones revoked (superseded)."""
    with transaction(rt.db) as session:
        row, card = card_sessions.use(session, rt, token, client_address=actor.client_address)
        _check_renewable(card)
        version, card_id, session_id = card.record_version, card.id, row.id
    try:
        dek = unwrap_session(row.session_wrap, session_key, session_id=session_id)
    except WrongSecret:
        raise SessionInvalid("The session key does not match this session.") from None
    record = open_record(rt.master_key, card)
    try:
        sealed, public = [], {}
        for usage in ROLES:
            key = ckeys.generate_private_key(ckeys.KeyAlgorithm(card.key_algorithm))
            pkcs8 = ckeys.private_key_to_pkcs8(key)
            try:
                sealed.append(
                    seal_private_key(
                        dek,
                        card_id=card_id,
                        role=usage.value,
                        version=record.key(usage.value).version + 1,
                        algorithm=card.key_algorithm,
                        pkcs8=pkcs8,
                    )
                )
            finally:
                wipe(pkcs8)
            public[usage] = key.public_key()
    finally:
        wipe(dek)
    renewed = {k.role for k in sealed}
    kept = tuple(k for k in record.keys if k.role not in renewed)
    new_record = CardKeyRecord(card_id=card_id, keys=kept + tuple(sealed), slots=record.slots)
    holder = actor.as_holder(card.person_id)
    return _certify_and_store(
        rt, holder, card.serial, public, record_version=version, record=new_record
    )


def recertify(
    rt: Runtime, actor: Actor, serial: str, *, organisation_id: str | None = None
) -> Renewed:
    """The RA's renewal: new certificates for the card's current keys."""
    with rt.db() as session:
        card = get_card(session, serial, organisation_id=organisation_id)
        _check_renewable(card)
        rows = session.scalars(
            select(Certificate).where(Certificate.card_id == card.id, Certificate.status == "valid")
        ).all()
    public: dict[cx509.CertUsage, cx509.PublicKeyInput] = {}
    for row in rows:
        cert = cx509.load_certificate_pem(row.pem.encode())
        public[cx509.CertUsage(row.usage)] = cx509.certificate_public_key_der(cert)
    if not set(ROLES) <= set(public):
        raise NotRenewable(
            f"Card {card.serial} lacks a valid certificate for each key, so there is no "
            "public key to certify again.",
            remedy="Ask the holder to renew from their own session (cardvault-agent renew).",
        )
    return _certify_and_store(
        rt, actor, card.serial, public, record_version=card.record_version, record=None
    )


def supersede(
    session: Session, card_id: str, now: datetime, usage: cx509.CertUsage | None = None
) -> int:
    """Revoke the card's valid certificates (of one usage) as superseded; how many."""
    stmt = update(Certificate).where(Certificate.card_id == card_id, Certificate.status == "valid")
    if usage is not None:
        stmt = stmt.where(Certificate.usage == usage.value)
    done = session.execute(
        stmt.values(status="revoked", revoked_at=now, revocation_reason="superseded").returning(
            Certificate.id
        )
    ).all()
    return len(done)


def _check_renewable(card: Card) -> None:
    if card.status not in RENEWABLE:
        raise NotRenewable(f"Card {card.serial} is {card.status}; it cannot be renewed.")


def _certify_and_store(
    rt: Runtime,
    actor: Actor,
    serial: str,
    public: Mapping[cx509.CertUsage, cx509.PublicKeyInput],
    *,
    record_version: int,
    record: CardKeyRecord | None,
) -> Renewed:
    issuer = ca.load(rt)
    with rt.db() as session:
        card = get_card(session, serial)
        certs = issue_for_card(rt, session, card, issuer, public)
    now = rt.clock()
    with transaction(rt.db) as session:
        card = get_card(session, serial, for_update=True)
        if card.record_version != record_version or card.status not in RENEWABLE:
            raise Conflict(
                f"Card {card.serial} changed while it was being renewed; nothing was changed.",
                remedy="Try again.",
            )
        if record is not None:
            seal_record(session, rt.master_key, card, record)
        for usage in certs:  # a key-management certificate the holder's renewal keeps stays
            supersede(session, card.id, now, usage)
        for usage, cert in certs.items():
            session.add(certificate_row(card.id, usage, cert))
        audit.record_for_card(
            session,
            rt,
            actor,
            card,
            action=AuditAction.CARD_RENEWED,
            details={"serial": card.serial, "new_keys": record is not None},
        )
    crls.publish_after_change(rt)
    return Renewed(
        serial=serial,
        new_keys=record is not None,
        certificates=[cx509.certificate_summary(c) for c in certs.values()],
    )


def issue_for_card(
    rt: Runtime,
    session: Session,
    card: Card,
    issuer: ca.IssuingCa,
    public: Mapping[cx509.CertUsage, cx509.PublicKeyInput],
) -> dict[cx509.CertUsage, cx509.Certificate]:
    """Certificates for the card's keys, with its holder's subject and today's profile."""
    person = session.get(Person, card.person_id)
    org = session.get(Organisation, card.organisation_id)
    assert person is not None and org is not None  # foreign keys
    policy = policy_of(org)
    profile = pki_links.card_profile(
        rt, person=person, ad=pki_links.ad_account_of(session, card.id), ca_cert=issuer.cert
    )
    subject = card_subject(policy, org, person)
    return {
        usage: cx509.issue_card_certificate(
            ca_key=issuer.key,
            ca_cert=issuer.cert,
            subject=subject,
            public_key=key,
            usage=usage,
            now=rt.clock(),
            validity_days=policy.certificate_days,
            profile=profile,
        )
        for usage, key in public.items()
    }
