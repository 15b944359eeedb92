"""An invitation's last step: the holder sets up a second factor, so the card is usable.

Finishing an invitation (``cards.invitations.complete``) makes the card active with a
strong passcode and security questions, but a sign-in also needs a second factor, and
until now only an RA could add one. So the portal continues, in the same browser and for
a short while (``SETUP_MINUTES``), with one of:

- **pair the phone**: a single-use pairing QR for this card (the same pairing as an RA's);
  the holder scans it with the authenticator and types the new passcode in the app;
- **register a security key** (WebAuthn), when the organisation allows security keys;
- **"my RA will add one in person"**, only where the organisation's policy says so
  (``in_person_methods``); audited, so the RA can see who is waiting.

The web session (server-side) keeps which card this browser just enrolled; these
functions take that card's serial and organisation and act as its holder.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.vocabulary import CardStatus, MethodKind
from cardvault.errors import Conflict, NotFound, PermissionDenied
from cardvault.json_types import JsonValue
from cardvault.services.audit import trail as audit
from cardvault.services.cards.lookup import get_card
from cardvault.services.cards.views import MethodView
from cardvault.services.devices import pairing
from cardvault.services.devices.channel import ACTIVE
from cardvault.services.directory.registry import get_org
from cardvault.services.security_keys import registration
from cardvault.services.security_keys.keys import CeremonyStart
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import Association, Card, Device, Link, Organisation
from cardvault.store.queries.organisations import policy_of

#: how long after finishing the invitation this browser may set up the second factor
SETUP_MINUTES = 30
#: associations that answer a sign-in's second step
SECOND_FACTORS = (MethodKind.TOTP, MethodKind.SECURITY_KEY)


@dataclass(frozen=True, kw_only=True)
class SetupChoices:
    """The invitation's second-factor step: what the holder may choose, whether they are done."""

    serial: str
    organisation_name: str
    security_keys: bool
    in_person: bool
    #: the card already has a phone or a key: the holder may say they are done
    ready: bool


def _card(session: Session, serial: str, org_code: str) -> tuple[Card, Organisation]:
    org = get_org(session, org_code)
    card = get_card(session, serial, organisation_id=org.id)
    if card.status != CardStatus.ACTIVE:
        raise Conflict(
            f"Your card is {card.status}; a second factor cannot be added now.",
            remedy="Ask your Registration Authority.",
        )
    return card, org


def _holder(actor: Actor, card: Card) -> Actor:
    return actor.as_holder(card.person_id)


def has_second_factor(session: Session, card: Card, org: Organisation) -> bool:
    """Whether the card has a paired phone or a second-factor method in this organisation."""
    phone = session.scalar(
        select(Device.id).where(
            Device.card_id == card.id, Device.organisation_id == org.id, Device.status == ACTIVE
        )
    )
    method = session.scalar(
        select(Association.id).where(
            Association.card_id == card.id,
            Association.organisation_id == org.id,
            Association.method.in_(SECOND_FACTORS),
        )
    )
    return phone is not None or method is not None


def choices(rt: Runtime, serial: str, org_code: str) -> SetupChoices:
    """What the setup page offers; raises NotFound or Conflict (the card is not active)."""
    with rt.db() as session:
        card, org = _card(session, serial, org_code)
        policy = policy_of(org)
        return SetupChoices(
            serial=card.serial,
            organisation_name=org.name,
            security_keys=policy.allows(MethodKind.SECURITY_KEY),
            in_person=policy.in_person_methods,
            ready=has_second_factor(session, card, org),
        )


def start_pairing(
    rt: Runtime, actor: Actor, serial: str, org_code: str
) -> pairing.PairingInvitation:
    """A single-use pairing QR for the card just enrolled."""
    with rt.db() as session:
        card, _org = _card(session, serial, org_code)
    return pairing.create_pairing(rt, _holder(actor, card), serial=serial, org_code=org_code)


def pairing_used(rt: Runtime, serial: str, org_code: str, link_id: str) -> bool:
    """Whether the phone has paired with the code shown (its link is consumed)."""
    with rt.db() as session:
        card, _org = _card(session, serial, org_code)
        link = session.get(Link, link_id[:36])
        if link is None or link.card_id != card.id or link.purpose != pairing.PURPOSE:
            raise NotFound("There is no such pairing code.")
        return link.consumed_at is not None


def begin_key(rt: Runtime, actor: Actor, serial: str, org_code: str) -> CeremonyStart:
    """Start registering a security key from the invitation; raises Conflict if the card is
    not active."""
    with rt.db() as session:
        card, _org = _card(session, serial, org_code)
    return registration.begin_registration(
        rt, _holder(actor, card), serial=serial, org_code=org_code
    )


def complete_key(
    rt: Runtime,
    actor: Actor,
    serial: str,
    org_code: str,
    *,
    ceremony_id: str,
    response: Mapping[str, JsonValue],
    nickname: str,
) -> MethodView:
    """Finish registering the invitation's security key; raises Conflict if the card is not
    active, or what the registration ceremony raises."""
    with rt.db() as session:
        card, _org = _card(session, serial, org_code)
    return registration.complete_registration(
        rt, _holder(actor, card), ceremony_id=ceremony_id, response=response, nickname=nickname
    )


def in_person(rt: Runtime, actor: Actor, serial: str, org_code: str) -> None:
    """The holder will get a second factor from their RA in person (where policy allows)."""
    with transaction(rt.db) as session:
        card, org = _card(session, serial, org_code)
        if not policy_of(org).in_person_methods:
            raise PermissionDenied(
                f"{org.name} asks you to set up your phone or a security key now.",
                remedy="Choose one of the ways above.",
            )
        audit.record_for_card(
            session,
            rt,
            _holder(actor, card),
            card,
            action=AuditAction.CARD_SECOND_FACTOR_IN_PERSON,
            organisation_id=org.id,
        )


def ready(rt: Runtime, serial: str, org_code: str) -> bool:
    """Whether the card now has a second factor (the holder may say they are done)."""
    with rt.db() as session:
        card, org = _card(session, serial, org_code)
        return has_second_factor(session, card, org)


def setup_open(until: str | None, now: datetime) -> bool:
    """Whether this browser's setup window (an ISO time in its web session) is still open."""
    if not until:
        return False
    try:
        return now < datetime.fromisoformat(until)
    except ValueError:
        return False
