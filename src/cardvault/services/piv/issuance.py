"""Issuing a card through PC/SC (DESIGN §3.8): a blank card in the RA's reader, personalised by
the card management system as it would personalise a physical card.

``start`` creates the card in status ``blank`` with a fresh DEK, a blank PIV applet (default
management key, PIN 123456, PUK 12345678) and a reader link for the RA's session; the DEK is
wrapped under a new issuance key IK that only the RA's connector holds. The card becomes
``issued`` -- once, in the transaction of the APDU that completed it -- when the management
key was changed, 9A and 9C hold generated keys with matching certificates, and PIN and PUK
were set. The PIN is then the issuance passcode: the keys are sealed under it, and enrolment
replaces that slot with the strong passcode.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from cryptography.x509 import Certificate as X509Certificate
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cardvault.card.piv import PivState, Slot, blank_card, dump_state
from cardvault.card.piv import objects as piv_objects
from cardvault.card.piv.asymmetric import GENERATABLE
from cardvault.card.piv.link_state import LinkState, dump_link_state
from cardvault.card.tlv import TlvError
from cardvault.crypto import x509 as cx509
from cardvault.crypto.aead import wipe
from cardvault.crypto.cert_errors import CertificateUnreadable
from cardvault.crypto.keyslots import CardKeyRecord, new_dek, new_session_key, wrap_for_session
from cardvault.domain import identifiers
from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.vocabulary import CardStatus
from cardvault.errors import PermissionDenied
from cardvault.services.audit import trail as audit
from cardvault.services.cards.errors import CardExists, NotAMember
from cardvault.services.cards.issuance import certificate_row, end_card
from cardvault.services.cards.sealing import seal_record
from cardvault.services.directory.registry import get_person, is_member
from cardvault.services.piv.image import piv_serial
from cardvault.services.piv.ports import Mode
from cardvault.services.piv.secrets import PivSecrets, seal_secrets
from cardvault.services.signin import sessions as card_sessions
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import (
    Card,
    CardSession,
    Certificate,
    Organisation,
    Person,
    PivCard,
    PivLink,
)
from cardvault.store.queries.organisations import policy_of
from cardvault.store.types import new_id

__all__ = [
    "ISSUERS",
    "REQUIRED_SLOTS",
    "IssuanceStarted",
    "issuance_wrap_id",
    "missing_steps",
    "start",
    "sync",
]

ISSUERS = ("ra_manager", "ra_agent")
REQUIRED_SLOTS = {
    Slot.PIV_AUTHENTICATION: cx509.CertUsage.AUTHENTICATION,
    Slot.DIGITAL_SIGNATURE: cx509.CertUsage.CONTENT_COMMITMENT,
}


@dataclass(frozen=True, kw_only=True)
class IssuanceStarted:
    """A PC/SC issuance begun: the reader link and the issuance key for the connector."""

    link_id: str
    serial: str
    issuance_key: bytes = field(repr=False)
    holder: str
    organisation: str
    expires_at: datetime
    idle_expires_at: datetime


@dataclass(frozen=True, kw_only=True)
class _Blank:
    """What a blank card is made of, built before the transaction (KDFs, random)."""

    card_id: str
    serial: str
    link_id: str
    record: CardKeyRecord
    secrets: PivSecrets
    state: PivState
    wrap: bytes
    issuance_key: bytes = field(repr=False)


def issuance_wrap_id(link_id: str) -> str:
    """The AAD name under which a link's DEK is wrapped for its issuance key."""
    return f"piv-issuance:{link_id}"


def start(rt: Runtime, actor: Actor, *, token: str, user_id: str, org_code: str) -> IssuanceStarted:
    """Insert a blank card for ``user_id`` into the RA's reader (their session's link)."""
    with transaction(rt.db) as session:
        _ra_context(session, rt, actor, token, org_code)
    blank = _build_blank(rt)
    with transaction(rt.db) as session:
        row, org, ra_person = _ra_context(session, rt, actor, token, org_code)
        person = get_person(session, user_id)
        ra_actor = Actor(
            ref=f"ra:{ra_person.id}",
            display=ra_person.common_name,
            client_address=actor.client_address,
            request_id=actor.request_id,
        )
        _check_person(session, rt, ra_actor, org, person)
        card = _insert_blank(session, rt, org, person, row, blank)
        audit.record(
            session,
            rt,
            ra_actor,
            action=AuditAction.CARD_ISSUANCE_STARTED,
            organisation_id=org.id,
            person_id=person.id,
            card_id=card.id,
            details={"serial": card.serial, "channel": "pcsc", "link": blank.link_id},
        )
        return IssuanceStarted(
            link_id=blank.link_id,
            serial=card.serial,
            issuance_key=blank.issuance_key,
            holder=person.common_name,
            organisation=org.code,
            expires_at=row.expires_at,
            idle_expires_at=row.idle_expires_at,
        )


def _ra_context(
    session: Session, rt: Runtime, actor: Actor, token: str, org_code: str
) -> tuple[CardSession, Organisation, Person]:
    row = card_sessions.require_role(
        session, rt, token, client_address=actor.client_address, roles=ISSUERS
    )
    org = session.get(Organisation, row.acting_organisation_id)
    person = session.get(Person, row.person_id)
    assert org is not None and person is not None
    wanted = identifiers.org_code(org_code)
    if org.code != wanted:
        raise PermissionDenied(
            f"You are acting in {org.code}, not in {wanted}.",
            remedy=f"Choose an RA role in {wanted} first (cardvault-agent role {wanted} ROLE).",
        )
    return row, org, person


def _build_blank(rt: Runtime) -> _Blank:
    card_id, link_id, serial = new_id(), new_id(), identifiers.new_card_serial()
    piv_secrets = PivSecrets.blank(rt.settings.argon2)
    # the card's own identifiers: the CHUID's GUID is its UUID (OpenSC's token serial), GET
    # SERIAL its derived number; a card management system may still write another CHUID
    state = blank_card(serial=piv_serial(serial), guid=uuid.UUID(card_id).bytes)
    dek, ik = new_dek(), new_session_key()
    try:
        wrap = wrap_for_session(dek, ik, session_id=issuance_wrap_id(link_id))
        return _Blank(
            card_id=card_id,
            serial=serial,
            link_id=link_id,
            record=CardKeyRecord(card_id=card_id, keys=(), slots=()),
            secrets=piv_secrets,
            state=state,
            wrap=wrap,
            issuance_key=bytes(ik),
        )
    finally:
        wipe(dek)
        wipe(ik)


def _check_person(
    session: Session, rt: Runtime, actor: Actor, org: Organisation, person: Person
) -> None:
    """A member without a live card; a blank card left by an interrupted issuance is replaced."""
    if not is_member(session, person.id, org.id):
        raise NotAMember(f"{person.common_name} is not a member of {org.code}.")
    live = session.scalars(
        select(Card)
        .where(Card.person_id == person.id, Card.status != CardStatus.REVOKED)
        .with_for_update()
    ).all()
    for card in live:
        if card.status != CardStatus.BLANK:
            raise CardExists(
                f"{person.common_name} already has card {card.serial} (status {card.status}).",
                remedy="Revoke it before issuing another.",
            )
        _abandon(session, rt, actor, card)


def _abandon(session: Session, rt: Runtime, actor: Actor, card: Card) -> None:
    """A blank card that a new one replaces ends like any revoked card (it has no
    certificates yet, so none to revoke)."""
    end_card(session, rt, actor, card, "issuance abandoned: a new blank card replaced it")


def _insert_blank(
    session: Session,
    rt: Runtime,
    org: Organisation,
    person: Person,
    ra_session: CardSession,
    blank: _Blank,
) -> Card:
    policy = policy_of(org)
    card = Card(
        id=blank.card_id,
        serial=blank.serial,
        person_id=person.id,
        organisation_id=org.id,
        status=CardStatus.BLANK,
        key_algorithm=policy.key_algorithm,
    )
    session.add(card)
    session.flush()
    seal_record(session, rt.master_key, card, blank.record)
    session.add(
        PivCard(
            card_id=card.id,
            state=dump_state(blank.state).decode(),
            secrets=seal_secrets(rt.master_key, card.id, 1, blank.secrets),
            secrets_version=1,
            public_keys={},
        )
    )
    session.add(
        PivLink(
            id=blank.link_id,
            card_id=card.id,
            session_id=ra_session.id,
            mode=Mode.ISSUANCE.value,
            link_state=dump_link_state(LinkState()).decode(),
            issuance_wrap=blank.wrap,
        )
    )
    return card


# -- completion --------------------------------------------------------------------------------


def missing_steps(
    state: PivState, piv_secrets: PivSecrets, public_keys: Mapping[str, str]
) -> list[str]:
    """What the card management system has still to do before the card is issued."""
    missing = []
    if state.management_key_default:
        missing.append("change the management key")
    for slot in REQUIRED_SLOTS:
        if state.key_algorithm(slot) is None:
            missing.append(f"generate a key in {int(slot):02x}")
        else:
            problem = _certificate(state, slot, public_keys)
            if isinstance(problem, str):
                missing.append(problem)
    if not piv_secrets.pin_set:
        missing.append("set the PIN")
    if not piv_secrets.puk_set:
        missing.append("set the PUK")
    return missing


def _certificate(
    state: PivState, slot: Slot, public_keys: Mapping[str, str]
) -> X509Certificate | str:
    label = f"{int(slot):02x}"
    container = state.object(slot.certificate_object)
    if container is None:
        return f"import a certificate for {label}"
    try:
        cert = cx509.load_certificate_der(piv_objects.certificate(container))
    except (TlvError, CertificateUnreadable):
        return f"the {label} certificate object holds no readable certificate"
    spki = cx509.certificate_public_key_der(cert)
    if public_keys.get(label) != _b64(spki):
        return f"the {label} certificate is for another key than the one in {label}"
    return cert


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def sync(
    session: Session,
    rt: Runtime,
    actor: Actor,
    card: Card,
    state: PivState,
    piv_secrets: PivSecrets,
    public_keys: Mapping[str, str],
) -> list[str]:
    """Issue the card once it is complete; later certificate changes replace the stored ones.

    ``card`` is locked by the caller. Returns what is still missing."""
    missing = missing_steps(state, piv_secrets, public_keys)
    if card.status not in (CardStatus.BLANK, CardStatus.ISSUED):
        return missing
    if missing:
        if card.status == CardStatus.ISSUED:
            _reopen(session, rt, actor, card, missing)
        return missing
    certs = {
        usage: _certificate(state, slot, public_keys) for slot, usage in REQUIRED_SLOTS.items()
    }
    changed = _store_certificates(session, card, certs, rt.clock())
    if card.status == CardStatus.BLANK:
        algorithm = state.key_algorithm(Slot.PIV_AUTHENTICATION)
        assert algorithm is not None
        card.status, card.status_changed_at = CardStatus.ISSUED, rt.clock()
        card.key_algorithm = GENERATABLE[algorithm].value
        _audit(session, rt, actor, card, AuditAction.CARD_ISSUED, changed)
    elif changed:
        _audit(session, rt, actor, card, AuditAction.CARD_CERTIFICATE_REPLACED, changed)
    return []


def _reopen(session: Session, rt: Runtime, actor: Actor, card: Card, missing: list[str]) -> None:
    """The card management system changed an issued card (a key replaced, a certificate
    removed): it is blank again until it is complete again, so it cannot be enrolled."""
    card.status, card.status_changed_at = CardStatus.BLANK, rt.clock()
    audit.record_for_card(
        session,
        rt,
        actor,
        card,
        action=AuditAction.CARD_ISSUANCE_REOPENED,
        reason="; ".join(missing)[:300],
        details={"serial": card.serial, "channel": "pcsc"},
    )


def _store_certificates(
    session: Session,
    card: Card,
    certs: Mapping[cx509.CertUsage, X509Certificate | str],
    now: datetime,
) -> list[str]:
    changed = []
    for usage, cert in certs.items():
        assert not isinstance(cert, str)  # missing_steps found no problem
        summary = cx509.certificate_summary(cert)
        current = session.scalar(
            select(Certificate).where(
                Certificate.card_id == card.id,
                Certificate.usage == usage.value,
                Certificate.status == "valid",
            )
        )
        if current is not None and current.fingerprint_sha256 == summary["fingerprint_sha256"]:
            continue
        session.execute(
            update(Certificate)
            .where(Certificate.card_id == card.id, Certificate.usage == usage.value)
            .where(Certificate.status == "valid")
            .values(status="replaced", revoked_at=now)
        )
        session.add(certificate_row(card.id, usage, cert))
        changed.append(usage.value)
    return changed


def _audit(
    session: Session, rt: Runtime, actor: Actor, card: Card, action: AuditAction, usages: list[str]
) -> None:
    audit.record_for_card(
        session,
        rt,
        actor,
        card,
        action=action,
        details={
            "serial": card.serial,
            "channel": "pcsc",
            "key_algorithm": card.key_algorithm,
            "certificates": usages,
        },
    )
