"""The paired devices of a card: list and revoke.

Revoking takes effect at once: the row is marked revoked (so the next signed request is
refused), its TOTP secret is erased, its device slot is removed from the card's key record
(the biometric unlock is gone for good), sessions the mobile agent opened end, and a
``revoked`` event closes the device's open event stream on whichever instance holds it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from cardvault.crypto.keyslots import SlotNotFound, device_slot_name
from cardvault.domain.audit_actions import AuditAction
from cardvault.errors import NotFound
from cardvault.json_types import JsonObject
from cardvault.services.audit import trail as audit
from cardvault.services.cards.lookup import get_card
from cardvault.services.cards.sealing import open_record, seal_record
from cardvault.services.devices.channel import (
    ACTIVE,
    REVOKED,
    channel,
    connected,
    device_dict,
    device_topic,
)
from cardvault.services.notifications import outbox as notifications
from cardvault.services.recovery.reset_links import may_self_unlock
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import Card, CardSession, Device, Organisation
from cardvault.store.queries import card_rows

MIA_METHODS = ("mia+passcode", "mia+biometric")


def list_devices(
    rt: Runtime, serial: str, *, organisation_id: str | None = None
) -> list[JsonObject]:
    """The card's devices (within one organisation when given), with who is connected now."""
    with rt.db() as session:
        card = get_card(session, serial, organisation_id=organisation_id)
        devices = card_rows.of_card(session, Device, card.id, organisation_id)
    present = connected(rt, [d.id for d in devices if d.status == ACTIVE])
    return [device_dict(d, connected=d.id in present) for d in devices]


def revoke(
    rt: Runtime,
    actor: Actor,
    device_id: str,
    *,
    organisation_id: str | None = None,
    card_id: str | None = None,
    reason: str = "removed",
    also: Callable[[Session, Card, Organisation, str], object] | None = None,
) -> JsonObject:
    """Revoke a device now; its slot, TOTP secret and mobile-agent sessions go with it.

    ``card_id`` limits it to one card's devices (a holder's own); ``also`` runs in the same
    transaction with the card, organisation and device name (the holder's RAs are told)."""
    with transaction(rt.db) as session:
        device = card_rows.in_scope_for_update(
            session, Device, device_id, organisation_id=organisation_id, card_id=card_id
        )
        if device is None:
            raise NotFound("There is no such device.")
        if device.status != ACTIVE:
            return device_dict(device)
        card, org = revoke_in_session(session, rt, actor, device, reason)
        if also is not None:
            also(session, card, org, device.name)
        out = device_dict(device)
    published_revocation(rt, device_id, reason)
    return out


def revoke_in_session(
    session: Session, rt: Runtime, actor: Actor, device: Device, reason: str
) -> tuple[Card, Organisation]:
    """Revoke an active device in the caller's transaction (its slot, TOTP secret and
    mobile-agent sessions go; audited; the holder told). After the commit, call
    ``published_revocation`` so an open event stream hears of it."""
    card = session.get(Card, device.card_id, with_for_update=True)
    org = session.get(Organisation, device.organisation_id)
    assert card is not None and org is not None
    had_slot = _drop_slot(session, rt, card, device)
    device.status, device.revoked_at = REVOKED, rt.clock()
    device.sealed_totp_secret, device.biometric_slot = None, False
    ended = session.execute(
        delete(CardSession).where(
            CardSession.card_id == card.id, CardSession.method.in_(MIA_METHODS)
        )
    )
    audit.record_for_card(
        session,
        rt,
        actor,
        card,
        action=AuditAction.DEVICE_REVOKED,
        organisation_id=org.id,
        reason=reason[:300],
        details={
            "device": device.id,
            "name": device.name,
            "slot_removed": had_slot,
            "sessions_ended": int(getattr(ended, "rowcount", 0) or 0),
        },
    )
    notifications.device_removed(session, rt, card, device.name)
    return card, org


def published_revocation(rt: Runtime, device_id: str, reason: str = "removed") -> None:
    """Tell the device's open event stream it is revoked (after the revocation committed)."""
    channel(rt).publish(device_topic(device_id), {"type": "revoked", "reason": reason[:300]})


def _drop_slot(session: Any, rt: Runtime, card: Card, device: Device) -> bool:
    if not device.biometric_slot or card.key_record is None:
        return False
    record = open_record(rt.master_key, card)
    try:
        smaller = record.without_slot(device_slot_name(device.id))
    except SlotNotFound:
        return False
    seal_record(session, rt.master_key, card, smaller)
    return True


def still_usable(rt: Runtime, device_id: str) -> bool:
    """For open event streams: is the device still active, and may its card still get
    challenges (active, or locked by wrong passcodes and waiting for the holder's reset)?"""
    with rt.db() as session:
        device = session.get(Device, device_id)
        card = session.get(Card, device.card_id) if device else None
        return bool(device and card and device.status == ACTIVE and may_self_unlock(card))
