"""The signed-in holder's ways to sign in: see them, remove a lost one, add another.

A holder sees the phones paired with their card and the methods associated with it in
the organisation they signed in to. They may remove a phone or a security key
(lost, replaced): the removal is the same as an RA's (the device's slot and TOTP secret
go, its sessions end; the key's association goes), recorded as the holder's act, and
the organisation's RA managers and agents are emailed in the same transaction, so a
thief who removes the holder's phone is noticed. Adding another phone or key reuses
pairing and registration, as an RA would, when the organisation's policy lets holders
add methods themselves (``holders_add_methods``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardvault.domain.vocabulary import MethodKind
from cardvault.errors import InvalidInput, NotFound, PermissionDenied
from cardvault.json_types import JsonValue
from cardvault.services.cards import methods as card_methods
from cardvault.services.cards.views import MethodView
from cardvault.services.devices import pairing, registry
from cardvault.services.devices.channel import ACTIVE
from cardvault.services.holders.account import Signed, confirm_passcode, signed_in
from cardvault.services.notifications import outbox as notifications
from cardvault.services.security_keys import registration
from cardvault.services.security_keys.keys import CeremonyStart
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import Association, Card, Device, Link, Organisation

PHONE = "phone"
#: what a holder may remove themselves: a lost phone or a security key. An AD account or an
#: HR card is the organisation's record of who they are: only an RA changes those.
REMOVABLE = (MethodKind.SECURITY_KEY, MethodKind.TOTP)
KIND_NAMES = {
    PHONE: "Phone with the cardvault app",
    MethodKind.SECURITY_KEY: "Security key",
    MethodKind.TOTP: "Authenticator app",
    MethodKind.AD_ACCOUNT: "Windows account",
    MethodKind.HR_CARD: "HR card",
}


@dataclass(frozen=True, kw_only=True)
class OwnMethod:
    """One way the holder signs in, as "My card" lists it."""

    id: str
    kind: str
    kind_name: str
    name: str
    added_at: datetime
    last_used_at: datetime | None
    removable: bool


def my_methods(rt: Runtime, actor: Actor, session_id: str) -> list[OwnMethod]:
    """The card's active phones and its methods in the signed-in organisation."""
    with transaction(rt.db) as session:
        me = signed_in(session, rt, actor, session_id)
        phones = session.scalars(
            select(Device)
            .where(
                Device.card_id == me.card.id,
                Device.organisation_id == me.organisation.id,
                Device.status == ACTIVE,
            )
            .order_by(Device.created_at)
        )
        out = [_phone(d) for d in phones]
        assocs = session.scalars(
            select(Association)
            .where(
                Association.card_id == me.card.id,
                Association.organisation_id == me.organisation.id,
            )
            .order_by(Association.created_at)
        )
        return out + [_method(MethodView.of(a)) for a in assocs]


def _phone(d: Device) -> OwnMethod:
    return OwnMethod(
        id=d.id,
        kind=PHONE,
        kind_name=KIND_NAMES[PHONE],
        name=d.name,
        added_at=d.created_at,
        last_used_at=d.last_seen_at,
        removable=True,
    )


def _method(m: MethodView) -> OwnMethod:
    return OwnMethod(
        id=m.id,
        kind=m.method.value,
        kind_name=KIND_NAMES.get(m.method, m.method.value),
        name=m.label or m.authenticator or KIND_NAMES.get(m.method, m.method.value),
        added_at=m.created_at,
        last_used_at=m.last_used_at,
        removable=m.method in REMOVABLE,
    )


def remove(
    rt: Runtime, actor: Actor, session_id: str, *, kind: str, method_id: str, current: str
) -> str:
    """Remove one of the holder's own phones or security keys (the current passcode
    first: an unattended browser must not remove the holder's phone); returns its name."""
    if kind != PHONE and kind not in {k.value for k in REMOVABLE}:
        raise InvalidInput(
            "Only a phone, a security key or an authenticator app can be removed here."
        )
    me = confirm_passcode(rt, actor, session_id, current)
    if kind == PHONE:
        return _remove_phone(rt, me, method_id)

    def tell_ras(session: Session, card: Card, removed: MethodView) -> None:
        name = removed.label or KIND_NAMES.get(removed.method, removed.method.value)
        notifications.holder_removed_method(session, rt, card, me.organisation, name)

    removed = card_methods.remove_method(
        rt,
        me.actor,
        method_id[:36],
        organisation_id=me.organisation.id,
        card_id=me.card.id,
        also=tell_ras,
    )
    return removed.label or KIND_NAMES.get(removed.method, removed.method.value)


def _remove_phone(rt: Runtime, me: Signed, device_id: str) -> str:
    def tell_ras(session: Session, card: Card, org: Organisation, name: str) -> None:
        notifications.holder_removed_method(session, rt, card, org, f"phone {name}")

    removed = registry.revoke(
        rt,
        me.actor,
        device_id[:36],
        organisation_id=me.organisation.id,
        card_id=me.card.id,
        reason="removed by the holder",
        also=tell_ras,
    )
    return str(removed["name"])


# --- adding another phone or key --------------------------------------------------------


def _may_add(me: Signed) -> None:
    if not me.policy.holders_add_methods:
        raise PermissionDenied(
            f"{me.organisation.name} does not let holders add phones or security keys themselves.",
            remedy="Ask your Registration Authority to add one for you.",
        )


@dataclass(frozen=True, kw_only=True)
class PairingShown:
    """A pairing QR shown on My card: its URI, its link and when it expires."""

    uri: str
    link_id: str
    expires_at: datetime


def start_pairing(rt: Runtime, actor: Actor, session_id: str) -> PairingShown:
    """A single-use pairing QR for the holder's own card (older ones are revoked)."""
    with transaction(rt.db) as session:
        me = signed_in(session, rt, actor, session_id)
        _may_add(me)
    offer = pairing.create_pairing(
        rt, me.actor, serial=me.card.serial, org_code=me.organisation.code
    )
    return PairingShown(uri=offer.uri, link_id=offer.link_id, expires_at=offer.expires_at)


def pairing_used(rt: Runtime, card_id: str, link_id: str) -> bool:
    """Whether the phone has paired with this pairing code (its link is consumed)."""
    with rt.db() as session:
        link = session.get(Link, link_id[:36])
        if link is None or link.card_id != card_id or link.purpose != pairing.PURPOSE:
            raise NotFound("There is no such pairing code.")
        return link.consumed_at is not None


def card_of(rt: Runtime, actor: Actor, session_id: str) -> str:
    """The signed-in holder's card id (to check a pairing code belongs to it)."""
    with transaction(rt.db) as session:
        return signed_in(session, rt, actor, session_id).card.id


def begin_key(rt: Runtime, actor: Actor, session_id: str) -> CeremonyStart:
    """Start registering a security key for the holder's own card; raises SessionInvalid, or
    PermissionDenied/Conflict when the policy or the card's count does not allow another."""
    with transaction(rt.db) as session:
        me = signed_in(session, rt, actor, session_id)
        _may_add(me)
    return registration.begin_registration(
        rt, me.actor, serial=me.card.serial, org_code=me.organisation.code
    )


def complete_key(
    rt: Runtime,
    actor: Actor,
    session_id: str,
    *,
    ceremony_id: str,
    response: Mapping[str, JsonValue],
    nickname: str,
) -> MethodView:
    """Finish registering the holder's security key; raises SessionInvalid, or what the
    registration ceremony raises (the key's answer does not check out)."""
    with transaction(rt.db) as session:
        me = signed_in(session, rt, actor, session_id)
    return registration.complete_registration(
        rt, me.actor, ceremony_id=ceremony_id, response=response, nickname=nickname
    )
