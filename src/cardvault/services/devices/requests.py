"""Authenticating a paired device's request (docs/protocols/device.md §3.2).

Every request after pairing carries the device id, a timestamp, a random nonce and an
ECDSA signature by the device key over method, path, timestamp, nonce and the body's
SHA-256. The service accepts it only within ``MAX_SKEW_SECONDS`` of its own clock and only
once: the nonce is inserted into ``used_nonces`` (primary key), so a replay is refused on
every instance. A revoked device, or one whose card can no longer be used, is refused
with the same answer as an unknown one (a card locked by wrong passcodes still gets its
reset's push challenges: ``for_challenges``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.exc import IntegrityError as DbIntegrityError
from sqlalchemy.orm import Session

from cardvault.crypto import device as dcrypto
from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.vocabulary import CardStatus
from cardvault.errors import InvalidInput
from cardvault.services.audit import trail as audit
from cardvault.services.devices.channel import ACTIVE
from cardvault.services.devices.errors import DeviceNotRecognised, RequestReplayed, RequestStale
from cardvault.services.networks import allow_list as network
from cardvault.services.recovery.reset_links import may_self_unlock
from cardvault.services.signin import factor_lockout
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import Card, Device, Organisation, UsedNonce

MAX_SKEW_SECONDS = 60
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_ID = re.compile(r"^[0-9a-f-]{36}$")


@dataclass(frozen=True, kw_only=True)
class SignedRequest:
    """The signature headers of a device request: device, time, nonce and signature."""

    device_id: str
    timestamp: str
    nonce: str
    signature: str = field(repr=False)
    method: str
    path: str
    body: bytes = field(repr=False)


@dataclass(frozen=True, kw_only=True)
class DeviceCaller:
    """The device a request came from, as it was when the request was checked."""

    device_id: str
    card_id: str
    organisation_id: str
    person_id: str
    name: str
    application: str
    public_key_der: bytes = field(repr=False)
    client_address: str | None


def _parse(req: SignedRequest) -> tuple[int, bytes]:
    if not _ID.match(req.device_id or ""):
        raise InvalidInput("The X-Cardvault-Device header is missing or malformed.")
    if not _NONCE.match(req.nonce or ""):
        raise InvalidInput("X-Cardvault-Nonce must be 16 to 64 base64url characters.")
    try:
        timestamp = int(req.timestamp)
    except (TypeError, ValueError):
        raise InvalidInput("X-Cardvault-Timestamp must be whole seconds since 1970.") from None
    return timestamp, dcrypto.unb64url(req.signature, "signature")


def authenticate(
    rt: Runtime,
    actor: Actor,
    req: SignedRequest,
    *,
    for_challenges: bool = False,
    sign_in: bool = False,
) -> DeviceCaller:
    """The calling device, or an error; the request's nonce is used up either way.

    ``for_challenges``: the request only receives or answers push challenges. Those also
    reach a card that wrong passcodes locked, whose holder resets it in the portal with
    the phone (DESIGN §3.3): the reset's push is the only one that can still succeed for
    such a card (the engine opens no session for a locked card).

    ``sign_in``: the request opens a card session (QR sign-in, the mobile agent), so the
    device's signature is the sign-in's second factor: it is reserved on the card's
    second-factor counter before it is checked, and a bad one counts (``factor_lockout``).
    """
    timestamp, signature = _parse(req)
    now = rt.clock()
    if abs(now.timestamp() - timestamp) > MAX_SKEW_SECONDS:
        raise RequestStale(
            "The request's timestamp is too far from the service's clock.",
            remedy="Set the phone's clock automatically (network time).",
        )
    with rt.db() as session:
        device = session.get(Device, req.device_id)
        card = session.get(Card, device.card_id) if device else None
        org = session.get(Organisation, device.organisation_id) if device else None
    if device is None or card is None or org is None or device.status != ACTIVE:
        raise DeviceNotRecognised()
    message = dcrypto.request_signing_input(
        method=req.method, path=req.path, timestamp=timestamp, nonce=req.nonce, body=req.body
    )
    if sign_in and card.status == CardStatus.ACTIVE:
        _check_counted(rt, actor, device, card, message, signature)
    else:
        _check(rt, actor, device, card, message, signature, None)
    _use_nonce(rt, actor, device, card, req.nonce, now + timedelta(seconds=2 * MAX_SKEW_SECONDS))
    if not (card.status == CardStatus.ACTIVE or (for_challenges and may_self_unlock(card))):
        raise DeviceNotRecognised(f"Card {card.serial} is {card.status}.")
    network.check_client(org, actor.client_address)
    return DeviceCaller(
        device_id=device.id,
        card_id=card.id,
        organisation_id=org.id,
        person_id=card.person_id,
        name=device.name,
        application=device.application,
        public_key_der=device.public_key_der,
        client_address=actor.client_address,
    )


def _check_counted(
    rt: Runtime, actor: Actor, device: Device, card: Card, message: bytes, signature: bytes
) -> None:
    with factor_lockout.reserved(
        rt, actor, card.id, organisation_id=device.organisation_id
    ) as held:
        _check(rt, actor, device, card, message, signature, held)


def _check(
    rt: Runtime,
    actor: Actor,
    device: Device,
    card: Card,
    message: bytes,
    signature: bytes,
    held: factor_lockout.Reservation | None,
) -> None:
    """The device's signature over the request; a bad one is audited (and counted when
    ``held`` reserved it)."""
    try:
        dcrypto.verify_device_signature(device.public_key_der, message, signature)
    except dcrypto.BadDeviceSignature:
        with transaction(rt.db) as session:
            if held is not None:  # the card's row first, as every transaction that may lock it
                session.get(Card, card.id, with_for_update=True)
            _refused(session, rt, actor, device, card, "bad device signature")
            if held is not None:
                held.wrong(
                    session,
                    rt,
                    actor,
                    organisation_id=device.organisation_id,
                    door=factor_lockout.SIGN_IN,
                )
        if held is not None:
            held.committed = True
        raise


def _use_nonce(
    rt: Runtime, actor: Actor, device: Device, card: Card, nonce: str, expires: object
) -> None:
    try:
        with transaction(rt.db) as session:
            session.add(UsedNonce(nonce=f"dev:{device.id}:{nonce}", expires_at=expires))
            fresh = session.get(Device, device.id)
            if fresh is not None:
                fresh.last_seen_at = rt.clock()
    except DbIntegrityError:
        with transaction(rt.db) as session:
            _refused(session, rt, actor, device, card, "replayed device request")
        raise RequestReplayed("This request was already received once; it is refused.") from None


def _refused(
    session: Session, rt: Runtime, actor: Actor, device: Device, card: Card, reason: str
) -> None:
    audit.record_for_card(
        session,
        rt,
        actor,
        card,
        action=AuditAction.DEVICE_REQUEST,
        outcome="failure",
        reason=reason,
        organisation_id=device.organisation_id,
        details={"device": device.id},
    )


def as_actor(caller: DeviceCaller, request_id: str | None = None) -> Actor:
    """The device as the actor of what it does, for the audit trail."""
    kwargs = {"request_id": request_id} if request_id else {}
    return Actor(
        ref=f"device:{caller.device_id}",
        display=f"device {caller.name}",
        client_address=caller.client_address,
        **kwargs,
    )
