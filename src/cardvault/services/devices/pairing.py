"""Pairing a phone with a card (docs/protocols/device.md §4).

The RA (or an operator) creates a pairing token bound to one card and one organisation:
256 random bits, only its SHA-256 stored, single use, valid for a few minutes. The QR code
carries it. The phone sends it back with its new P-256 public key (and a signature proving
it holds the private half) and the passcode the holder typed in the app, all inside a JWE
envelope. The passcode counts towards the lockout. Only when everything checks out is the
token consumed (a conditional UPDATE, so two phones racing with one code cannot both win)
and the device registered; the answer carries the device's TOTP secret, encrypted.

With biometrics enabled the phone also sends a fresh 32-byte device secret; the service
wraps the card's DEK under it in a device slot (DESIGN §3.1) and forgets the secret.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cardvault.crypto import device as dcrypto
from cardvault.crypto.aead import wipe
from cardvault.crypto.keyslots import make_device_slot
from cardvault.domain import totp
from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.vocabulary import CardStatus, SignInRoute
from cardvault.errors import Conflict, InvalidInput, NotFound
from cardvault.services.audit import trail as audit
from cardvault.services.cards.lookup import get_card
from cardvault.services.cards.sealing import open_record, seal_record
from cardvault.services.devices.channel import ACTIVE, APPLICATIONS, MAX_DEVICES_PER_CARD, seal_totp
from cardvault.services.devices.errors import (
    PairingExpired,
    PairingInvalid,
    PairingUsed,
    TooManyDevices,
)
from cardvault.services.devices.unlock import (
    check_passcode_text,
    open_with_passcode,
    require_route,
)
from cardvault.services.directory.registry import get_org, is_member
from cardvault.services.networks import allow_list as network
from cardvault.services.notifications import outbox as notifications
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.services.transport import keys as transport_keys
from cardvault.store.db import transaction
from cardvault.store.models import Card, Device, Link, Organisation, Person
from cardvault.store.queries import cards as card_queries
from cardvault.store.queries import links as link_queries
from cardvault.store.types import new_id

PURPOSE = "device_pairing"
URI_SCHEME = "cardvault"
TOKEN_BYTES = 32
_TEXT = re.compile(r"^[\w .,'()+&/:-]{1,100}$", re.UNICODE)


@dataclass(frozen=True, kw_only=True)
class PairingInvitation:
    """A pairing code made by the RA: the URI the QR code shows, and its expiry."""

    uri: str = field(repr=False)
    link_id: str
    card_serial: str
    organisation: str
    expires_at: datetime


@dataclass(frozen=True, kw_only=True)
class PairRequest:
    """What a phone sends to pair: the code, the passcode, its public key and proof."""

    token: str = field(repr=False)
    passcode: str = field(repr=False)
    public_key: str  # base64url SubjectPublicKeyInfo DER
    proof: str  # base64url DER signature over pairing_signing_input
    name: str
    platform: str
    application: str = "authenticator"
    device_secret: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, kw_only=True)
class Paired:
    """A phone paired: its id and the one-time-code secret it keeps."""

    device_id: str
    totp_uri: str = field(repr=False)
    totp_secret: str = field(repr=False)
    card_serial: str
    organisation: str
    organisation_name: str
    holder_name: str
    application: str
    biometric: bool


def token_hash(token: str) -> str:
    """The stored form of a pairing token (SHA-256)."""
    return hashlib.sha256(token.encode()).hexdigest()


# --- the RA's side ----------------------------------------------------------------------------


def create_pairing(
    rt: Runtime, actor: Actor, *, serial: str, org_code: str, minutes: int | None = None
) -> PairingInvitation:
    """A single-use pairing token for one card in one organisation; older ones are revoked."""
    minutes = minutes or rt.settings.device_pairing_minutes
    if not 1 <= minutes <= 24 * 60:
        raise InvalidInput("A pairing code is valid for 1 to 1440 minutes.", field="minutes")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    now = rt.clock()
    with transaction(rt.db) as session:
        org = get_org(session, org_code)
        card = get_card(session, serial, organisation_id=org.id)
        _check_card(session, card, org)
        link_queries.revoke_open(
            session, card_id=card.id, now=now, purpose=PURPOSE, organisation_id=org.id
        )
        link = Link(
            id=new_id(),
            purpose=PURPOSE,
            token_hash=token_hash(token),
            card_id=card.id,
            person_id=card.person_id,
            organisation_id=org.id,
            created_at=now,
            expires_at=now + timedelta(minutes=minutes),
        )
        session.add(link)
        audit.record_for_card(
            session,
            rt,
            actor,
            card,
            action=AuditAction.DEVICE_PAIRING_CREATED,
            organisation_id=org.id,
            details={"link": link.id, "valid_minutes": minutes},
        )
    uri = pairing_uri(rt, token, org.code)
    return PairingInvitation(
        uri=uri,
        link_id=link.id,
        card_serial=card.serial,
        organisation=org.code,
        expires_at=link.expires_at,
    )


def pairing_uri(rt: Runtime, token: str, org_code: str) -> str:
    """The ``cardvault://pair`` URI the QR code shows: server, token, organisation, key id."""
    kid = transport_keys.preferred_kid(rt)
    query = urlencode(
        {"v": "1", "server": rt.settings.base_url, "token": token, "org": org_code, "kid": kid}
    )
    return f"{URI_SCHEME}://pair?{query}"


def _check_card(session: Session, card: Card, org: Organisation) -> None:
    if card.status != CardStatus.ACTIVE:
        raise Conflict(
            f"Card {card.serial} is {card.status}; only an active card can pair a device.",
            remedy="Enrol or unlock the card first.",
        )
    if not is_member(session, card.person_id, org.id):
        raise NotFound(f"There is no card {card.serial} in {org.code}.")
    count = session.scalar(
        select(func.count())
        .select_from(Device)
        .where(Device.card_id == card.id, Device.status == ACTIVE)
    )
    if (count or 0) >= MAX_DEVICES_PER_CARD:
        raise TooManyDevices(
            f"Card {card.serial} already has {MAX_DEVICES_PER_CARD} paired devices.",
            remedy="Remove a device the holder no longer uses first.",
        )


# --- the phone's side -------------------------------------------------------------------------


def _check_request(req: PairRequest) -> bytes:
    for what, value in (("name", req.name), ("platform", req.platform)):
        if not isinstance(value, str) or not _TEXT.match(value.strip()):
            raise InvalidInput(
                f"The device {what} must be 1 to 100 letters, digits, spaces or punctuation.",
                field=what,
            )
    if req.application not in APPLICATIONS:
        raise InvalidInput("application is authenticator or mia.", field="application")
    if req.device_secret is not None and len(req.device_secret) != 32:
        raise InvalidInput("A device secret is 32 bytes.", field="device_secret")
    check_passcode_text(req.passcode)
    public_der = dcrypto.unb64url(req.public_key, "public key")
    dcrypto.check_public_key(public_der)
    dcrypto.verify_device_signature(
        public_der,
        dcrypto.pairing_signing_input(token=req.token, public_key=req.public_key),
        dcrypto.unb64url(req.proof, "proof"),
    )
    return public_der


def _claimable(rt: Runtime, actor: Actor, token: str) -> tuple[Link, Card, Organisation]:
    """The link, card and organisation a token pairs with; a precise error when it cannot."""
    now = rt.clock()
    expired: tuple[Link, Card] | None = None
    with rt.db() as session:
        link = session.scalar(select(Link).where(Link.token_hash == token_hash(token)))
        if link is None or link.purpose != PURPOSE or link.card_id is None:
            raise PairingInvalid(
                "This pairing code is not valid.",
                remedy="Scan the QR code your RA shows you, or ask for a new one.",
            )
        if link.consumed_at is not None or link.revoked_at is not None:
            raise PairingUsed(
                "This pairing code has already been used or was replaced by a newer one.",
                remedy="Ask your RA for a new pairing QR code.",
            )
        card = session.get(Card, link.card_id)
        org = session.get(Organisation, link.organisation_id)
        assert card is not None and org is not None
        if now >= link.expires_at:
            expired = (link, card)
        else:
            network.check_client(org, actor.client_address)
            _check_card(session, card, org)
            return link, card, org
    _expired(rt, actor, *expired)
    raise AssertionError("unreachable")


def _expired(rt: Runtime, actor: Actor, link: Link, card: Card) -> None:
    with transaction(rt.db) as session:
        audit.record_for_card(
            session,
            rt,
            actor,
            card,
            action=AuditAction.DEVICE_PAIRED,
            outcome="failure",
            reason="pairing code expired",
            organisation_id=link.organisation_id,
            details={"link": link.id},
        )
    minutes = int((link.expires_at - link.created_at).total_seconds() // 60)
    raise PairingExpired(
        f"This pairing code has expired (it was valid for {minutes} minutes, until "
        f"{link.expires_at:%H:%M} UTC).",
        remedy="Ask your RA to show a new pairing QR code and scan it within its time.",
    )


def pair(rt: Runtime, actor: Actor, req: PairRequest) -> Paired:
    """Register the phone if the token is good and the holder's passcode opens the card."""
    public_der = _check_request(req)
    link, card, org = _claimable(rt, actor, req.token)
    if req.application == "mia":
        require_route(org, SignInRoute.MIA, "the mobile identity agent")
    dek = open_with_passcode(rt, actor, card, req.passcode, action=AuditAction.DEVICE_PAIR_PASSCODE)
    device_id = new_id()
    try:
        slot = (
            make_device_slot(
                dek,
                card_id=card.id,
                device_id=device_id,
                device_secret=req.device_secret,
                generation=1,
            )
            if req.device_secret is not None
            else None
        )
    finally:
        wipe(dek)
    secret = totp.new_secret()
    with transaction(rt.db) as session:
        _consume(session, rt, link.id)
        fresh = card_queries.passcode_right(session, card.id)
        if slot is not None:
            seal_record(
                session, rt.master_key, fresh, open_record(rt.master_key, fresh).with_slot(slot)
            )
        device = _register(session, rt, req, device_id, fresh, org, public_der, secret)
        _audit_paired(session, rt, actor, device, fresh, link)
        notifications.device_added(session, rt, fresh, device.name)
        holder = session.get(Person, fresh.person_id)
        assert holder is not None
    uri = totp.provisioning_uri(secret, account=f"{card.serial} ({org.code})", issuer="cardvault")
    return Paired(
        device_id=device_id,
        totp_uri=uri,
        totp_secret=secret,
        card_serial=card.serial,
        organisation=org.code,
        organisation_name=org.name,
        holder_name=holder.common_name,
        application=req.application,
        biometric=slot is not None,
    )


def _consume(session: Session, rt: Runtime, link_id: str) -> None:
    if not link_queries.consume_link(session, link_id, rt.clock()):
        raise PairingUsed(
            "This pairing code has just been used by another device.",
            remedy="Ask your RA for a new pairing QR code.",
        )


def _register(
    session: Session,
    rt: Runtime,
    req: PairRequest,
    device_id: str,
    card: Card,
    org: Organisation,
    public_der: bytes,
    secret: str,
) -> Device:
    now = rt.clock()
    device = Device(
        id=device_id,
        card_id=card.id,
        organisation_id=org.id,
        name=req.name.strip(),
        platform=req.platform.strip(),
        application=req.application,
        public_key_der=public_der,
        sealed_totp_secret=seal_totp(rt.master_key, device_id, secret),
        totp_last_step=0,
        biometric_slot=req.device_secret is not None,
        status=ACTIVE,
        created_at=now,
        last_seen_at=now,
    )
    session.add(device)
    return device


def _audit_paired(
    session: Session, rt: Runtime, actor: Actor, device: Device, card: Card, link: Link
) -> None:
    """Recorded as the holder's act: whoever paired the phone typed the card's passcode."""
    audit.record_for_card(
        session,
        rt,
        actor.as_holder(card.person_id),
        card,
        action=AuditAction.DEVICE_PAIRED,
        organisation_id=device.organisation_id,
        details={
            "device": device.id,
            "name": device.name,
            "platform": device.platform,
            "application": device.application,
            "biometric": device.biometric_slot,
            "link": link.id,
        },
    )
