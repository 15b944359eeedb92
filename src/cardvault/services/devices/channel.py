"""What the device services share: the channel, topics, errors, sealed TOTP secrets, views."""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from cardvault.crypto.aead import aad
from cardvault.errors import NotFound, Unavailable
from cardvault.json_types import JsonObject
from cardvault.keystore.provider import MasterKey
from cardvault.notify.channel import Channel, open_channel
from cardvault.services.system.runtime import Runtime
from cardvault.store.models import Device

ACTIVE = "active"
REVOKED = "revoked"
APPLICATIONS = ("authenticator", "mia")
MAX_DEVICES_PER_CARD = 10
#: how long a device connection counts as present without a heartbeat
PRESENCE_TTL_SECONDS = 40.0


def channel(rt: Runtime) -> Channel:
    """This process's push channel (Redis when configured), made on first use; presence
    on the runtime's clock, as it is at each call (a test may move it)."""
    return rt.memo(
        ("push-channel", rt.settings.redis_url, rt.settings.redis_prefix),
        lambda: open_channel(
            rt.settings.redis_url, rt.settings.redis_prefix, clock=lambda: rt.clock()
        ),
    )


def connected(rt: Runtime, device_ids: list[str]) -> set[str]:
    """Which of these devices hold an event stream now; none when the channel is down,
    so that a Redis outage leaves the one-time code working."""
    if not device_ids:
        return set()
    try:
        return channel(rt).present(device_ids)
    except Unavailable:
        return set()


def device_topic(device_id: str) -> str:
    """The event-channel topic a paired phone listens on."""
    return f"device:{device_id}"


def challenge_topic(challenge_id: str) -> str:
    """The topic a push request's answer is published on."""
    return f"challenge:{challenge_id}"


def qr_topic(request_id: str) -> str:
    """The topic a QR sign-in request's answer is published on."""
    return f"qr:{request_id}"


def seal_totp(master: MasterKey, device_id: str, secret: str) -> bytes:
    """Seal a phone's one-time-code seed under the master key, bound to the device."""
    return master.seal(secret.encode(), aad=aad("device-totp", device_id))


def open_totp(master: MasterKey, device: Device) -> bytearray:
    """Open a phone's one-time-code seed; raises NotFound if it has none."""
    if device.sealed_totp_secret is None:
        raise NotFound("This device has no one-time-code secret.")
    return master.open(device.sealed_totp_secret, aad=aad("device-totp", device.id))


# Built once: every sign-in asks whether the card has a paired phone (the engine's offers),
# and SQLAlchemy reuses the compiled form of a statement object it has seen.
_ACTIVE_DEVICES = (
    select(Device)
    .where(
        Device.card_id == bindparam("device_card"),
        Device.organisation_id == bindparam("device_org"),
        Device.status == ACTIVE,
    )
    .order_by(Device.created_at)
)


def active_devices(session: Session, card_id: str, organisation_id: str) -> list[Device]:
    """The card's paired phones that are not revoked, in this organisation."""
    return list(
        session.scalars(_ACTIVE_DEVICES, {"device_card": card_id, "device_org": organisation_id})
    )


def device_dict(d: Device, *, connected: bool | None = None) -> JsonObject:
    """A paired phone as JSON (``connected`` when it is known whether it listens now)."""
    out: JsonObject = {
        "id": d.id,
        "name": d.name,
        "platform": d.platform,
        "application": d.application,
        "biometric": d.biometric_slot,
        "status": d.status,
        "created_at": d.created_at.isoformat(),
        "last_seen_at": d.last_seen_at.isoformat() if d.last_seen_at else None,
        "revoked_at": d.revoked_at.isoformat() if d.revoked_at else None,
    }
    if connected is not None:
        out["connected"] = connected
    return out
