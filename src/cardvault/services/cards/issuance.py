"""Issuing and revoking cards: keys generated inside the service, sealed, certified.

Key generation and certification happen before the database transaction; the card, its
certificates, its slot list and the audit event are then written in one transaction, so an
interrupted issuance leaves either no card or a whole one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.x509 import AuthorityKeyIdentifier, ExtensionNotFound, Name
from cryptography.x509 import Certificate as X509Certificate
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError as DbIntegrityError
from sqlalchemy.orm import Session

from cardvault.crypto import keys as ckeys
from cardvault.crypto import x509 as cx509
from cardvault.crypto.aead import wipe
from cardvault.crypto.crl import check_reason
from cardvault.crypto.keyslots import (
    CardKeyRecord,
    make_passcode_slot,
    new_dek,
    seal_private_key,
)
from cardvault.domain import identifiers
from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.org_policy import OrganisationPolicy
from cardvault.domain.vocabulary import CardStatus
from cardvault.errors import Conflict, InvalidInput
from cardvault.services.audit import trail as audit
from cardvault.services.cards.errors import CardExists, NotAMember
from cardvault.services.cards.lookup import end_card_state, get_card
from cardvault.services.cards.sealing import seal_record, shred_record
from cardvault.services.cards.views import CardSummary
from cardvault.services.directory.registry import get_org, get_person, is_member
from cardvault.services.pki import ca
from cardvault.services.pki import crl as crls
from cardvault.services.pki import links as pki_links
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import Card, Certificate, CertificateRequest, Organisation, Person
from cardvault.store.queries.organisations import policy_of
from cardvault.store.types import new_id

#: the keys every card has; an organisation may add the key-management key (``roles_for``)
ROLES = (cx509.CertUsage.AUTHENTICATION, cx509.CertUsage.CONTENT_COMMITMENT)
ISSUANCE_PASSCODE_MIN = 6
PASSCODE_MAX = 128


@dataclass(frozen=True, kw_only=True)
class IssueRequest:
    """What issuing a card takes: the person, their organisation, the issuance passcode."""

    organisation: str
    user_id: str
    issuance_passcode: str = field(repr=False)
    key_algorithm: str | None = None
    external_ca: bool = False


@dataclass(frozen=True, kw_only=True)
class IssuedCard:
    """A card just issued: its serial, status, key algorithm and certificates."""

    card_id: str
    serial: str
    status: CardStatus
    key_algorithm: str
    #: each certificate as ``crypto.x509.certificate_summary`` shows it (JSON-ready)
    certificates: list[dict[str, str | None]]
    csrs: list[dict[str, str]]


@dataclass(kw_only=True)
class _Material:
    """What issuance builds outside the transaction."""

    record: CardKeyRecord
    certs: list[tuple[cx509.CertUsage, X509Certificate]]
    csrs: list[tuple[cx509.CertUsage, bytes]]


def _quietly() -> None:
    """Nobody to tell."""


def check_issuance_passcode(passcode: str) -> None:
    """Raise InvalidInput if the RA's issuance passcode is too short or not text."""
    if not isinstance(passcode, str) or len(passcode) < ISSUANCE_PASSCODE_MIN:
        raise InvalidInput(
            f"The issuance passcode must be at least {ISSUANCE_PASSCODE_MIN} characters long.",
            field="passcode",
        )
    if len(passcode) > PASSCODE_MAX:
        raise InvalidInput(
            f"The issuance passcode must be at most {PASSCODE_MAX} characters.", field="passcode"
        )


def issue_card(
    rt: Runtime, actor: Actor, req: IssueRequest, *, generating: Callable[[], None] = _quietly
) -> IssuedCard:
    """Every check first (passcode, organisation, person, algorithm), then ``generating()``
    is told that the keys are being made (it takes a moment), then the card is stored."""
    check_issuance_passcode(req.issuance_passcode)
    with rt.db() as session:
        org, person = get_org(session, req.organisation), get_person(session, req.user_id)
        _check_can_issue(session, org, person)
    policy = policy_of(org)
    alg = _algorithm(req.key_algorithm or policy.key_algorithm)
    card_id, serial = new_id(), identifiers.new_card_serial()
    generating()
    material = _build_material(
        rt,
        card_id=card_id,
        org=org,
        person=person,
        alg=alg,
        passcode=req.issuance_passcode,
        policy=policy,
        external_ca=req.external_ca,
    )
    try:
        with transaction(rt.db) as session:
            _check_can_issue(session, org, person)
            card = Card(
                id=card_id,
                serial=serial,
                person_id=person.id,
                organisation_id=org.id,
                status=CardStatus.ISSUED,
                key_algorithm=alg.value,
            )
            session.add(card)
            session.flush()
            seal_record(session, rt.master_key, card, material.record)
            _store_certificates(session, card, material)
            audit.record_for_card(
                session,
                rt,
                actor,
                card,
                action=AuditAction.CARD_ISSUED,
                details={
                    "serial": serial,
                    "key_algorithm": alg.value,
                    "external_ca": req.external_ca,
                },
            )
    except DbIntegrityError as exc:
        raise CardExists("Another card was issued for this person at the same moment.") from exc
    return IssuedCard(
        card_id=card_id,
        serial=serial,
        status=CardStatus.ISSUED,
        key_algorithm=alg.value,
        certificates=[cx509.certificate_summary(c) for _, c in material.certs],
        csrs=[{"usage": u.value, "pem": p.decode()} for u, p in material.csrs],
    )


def _algorithm(name: str) -> ckeys.KeyAlgorithm:
    try:
        return ckeys.KeyAlgorithm(name)
    except ValueError:
        choices = ", ".join(a.value for a in ckeys.KeyAlgorithm)
        raise InvalidInput(
            f"The key algorithm must be one of {choices}.", field="key_algorithm"
        ) from None


def _check_can_issue(session: Session, org: Organisation, person: Person) -> None:
    if not is_member(session, person.id, org.id):
        raise NotAMember(
            f"{person.common_name} is not a member of {org.code}.",
            remedy=f"Add them first: cardvault person add-org {person.user_id} {org.code}",
        )
    live = session.scalar(
        select(Card).where(Card.person_id == person.id, Card.status != CardStatus.REVOKED)
    )
    if live is not None:
        raise CardExists(
            f"{person.common_name} already has card {live.serial} (status {live.status}).",
            remedy="Revoke it before issuing another.",
        )


def _build_material(
    rt: Runtime,
    *,
    card_id: str,
    org: Organisation,
    person: Person,
    alg: ckeys.KeyAlgorithm,
    passcode: str,
    policy: OrganisationPolicy,
    external_ca: bool,
) -> _Material:
    subject = card_subject(policy, org, person)
    issuer = None if external_ca else ca.load(rt)
    profile = pki_links.card_profile(
        rt, person=person, ad=None, ca_cert=issuer.cert if issuer else None
    )
    dek = new_dek()
    try:
        sealed, certs, csrs = [], [], []
        for usage in roles_for(policy):
            key = ckeys.generate_private_key(alg)
            pkcs8 = ckeys.private_key_to_pkcs8(key)
            sealed.append(
                seal_private_key(
                    dek,
                    card_id=card_id,
                    role=usage.value,
                    version=1,
                    algorithm=alg.value,
                    pkcs8=pkcs8,
                )
            )
            wipe(pkcs8)
            if issuer is None:
                csr = cx509.build_csr(
                    subject=subject, private_key=key, usage=usage, profile=profile
                )
                csrs.append((usage, cx509.csr_to_pem(csr)))
            else:
                certs.append(
                    (
                        usage,
                        cx509.issue_card_certificate(
                            ca_key=issuer.key,
                            ca_cert=issuer.cert,
                            subject=subject,
                            public_key=key.public_key(),
                            usage=usage,
                            now=rt.clock(),
                            validity_days=policy.certificate_days,
                            profile=profile,
                        ),
                    )
                )
        slot = make_passcode_slot(
            dek, card_id=card_id, passcode=passcode, params=rt.settings.argon2, generation=1
        )
        record = CardKeyRecord(card_id=card_id, keys=tuple(sealed), slots=(slot,))
    finally:
        wipe(dek)
    return _Material(record=record, certs=certs, csrs=csrs)


def roles_for(policy: OrganisationPolicy) -> tuple[cx509.CertUsage, ...]:
    """The keys a new card of the organisation gets: 9D too when its policy says so."""
    return (*ROLES, cx509.CertUsage.KEY_MANAGEMENT) if policy.key_management else ROLES


def card_subject(policy: OrganisationPolicy, org: Organisation, person: Person) -> Name:
    """The subject of a holder's card certificates, by the organisation's template."""
    return cx509.render_subject(
        policy.subject_template,
        cx509.SubjectFields(
            common_name=person.common_name,
            user_id=person.user_id,
            organisation_name=org.name,
            organisation_code=org.code,
            email=person.email,
            given_name=person.forename,
            surname=person.surname,
        ),
    )


def _store_certificates(session: Session, card: Card, material: _Material) -> None:
    for usage, cert in material.certs:
        session.add(certificate_row(card.id, usage, cert))
    for usage, pem in material.csrs:
        session.add(CertificateRequest(card_id=card.id, usage=usage.value, csr_pem=pem.decode()))


def certificate_row(card_id: str, usage: cx509.CertUsage, cert: X509Certificate) -> Certificate:
    """The stored form of a card certificate; ``ca_key_id`` is the key identifier the
    certificate names as its issuer's (the CRL lists by it; OCSP also checks the signature)."""
    info = cx509.certificate_summary(cert)
    return Certificate(
        card_id=card_id,
        usage=usage.value,
        serial_hex=info["serial"],
        subject=info["subject"],
        issuer=info["issuer"],
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        fingerprint_sha256=info["fingerprint_sha256"],
        pem=cx509.certificate_to_pem(cert).decode(),
        ca_key_id=_issuer_key_id(cert),
    )


def _issuer_key_id(cert: X509Certificate) -> str | None:
    try:
        aki = cert.extensions.get_extension_for_class(AuthorityKeyIdentifier).value
    except ExtensionNotFound:
        return None
    return aki.key_identifier.hex() if aki.key_identifier else None


def revoke_card(
    rt: Runtime,
    actor: Actor,
    serial: str,
    *,
    reason: str,
    organisation_id: str | None = None,
    reason_code: str = "unspecified",
) -> CardSummary:
    """Crypto-shred the card: DEK and slots deleted, certificates revoked (with the RFC 5280
    ``reason_code``), audit kept; then the CRL is re-signed so relying parties see it.

    Raises NotFound for an unknown card (or one of another organisation, when given),
    Conflict when it is already revoked, InvalidInput for an empty or long reason or an
    unknown reason code.
    """
    with transaction(rt.db) as session:
        card = get_card(session, serial, organisation_id=organisation_id)
        revoked = revoke_in_session(session, rt, actor, card, reason, reason_code)
    crls.publish_after_change(rt)
    return revoked


def revoke_in_session(
    session: Session, rt: Runtime, actor: Actor, card: Card, reason: str, reason_code: str
) -> CardSummary:
    """``revoke_card`` in the caller's transaction (a leaver's card goes with the rest of
    the leaving); the caller re-signs the CRL after the commit (``crls.publish_after_change``).
    Raises Conflict when the card is already revoked, InvalidInput as ``revoke_card``."""
    reason = clean_reason(reason)
    reason_code = check_reason(reason_code)
    if card.status == CardStatus.REVOKED:
        raise Conflict(f"Card {card.serial} is already revoked.")
    end_card(session, rt, actor, card, reason, reason_code=reason_code)
    return CardSummary.of(card)


def end_card(
    session: Session,
    rt: Runtime,
    actor: Actor,
    card: Card,
    reason: str,
    *,
    reason_code: str | None = None,
) -> None:
    """End a card for good: its keys shredded, its certificates revoked (with the RFC 5280
    ``reason_code``, when given), its sessions and links ended, audited. Kept apart from the
    checks of ``revoke_in_session`` so that a blank card replaced at PIV issuance can end
    the same way; the caller has checked that the card may end."""
    shred_record(session, card)
    now = rt.clock()
    card.status, card.status_reason, card.status_changed_at = CardStatus.REVOKED, reason, now
    for cert in session.scalars(select(Certificate).where(Certificate.card_id == card.id)):
        if cert.status != "revoked":
            cert.status, cert.revoked_at = "revoked", now
            cert.revocation_reason = reason_code
    end_card_state(session, card.id, now)
    details = {"serial": card.serial} | ({"reason_code": reason_code} if reason_code else {})
    audit.record_for_card(
        session, rt, actor, card, action=AuditAction.CARD_REVOKED, reason=reason, details=details
    )


def clean_reason(text: str, *, limit: int = 500) -> str:
    """A reason for the audit log: spaces collapsed, not empty, at most ``limit`` characters
    (the vRA Manager's lock and unlock take a shorter one)."""
    cleaned = " ".join((text or "").split())
    if not cleaned:
        raise InvalidInput("Give a reason.", field="reason")
    if len(cleaned) > limit:
        raise InvalidInput(f"The reason must be at most {limit} characters.", field="reason")
    return cleaned
