"""What the shells see of a card's authentication methods: frozen views, never the rows.

A method's secret (a TOTP seed, a credential's key) never leaves the store; the view has
what a person or an RA may read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cardvault.store.models import Association, Card


@dataclass(frozen=True, kw_only=True)
class MethodView:
    """An authentication method (association) bound to a card in one organisation."""

    id: str
    card_id: str
    organisation_id: str
    method: str
    #: the normalised identifier (AD name, HR card UID, credential id)
    lookup_key: str
    label: str | None
    status: str
    created_at: datetime
    last_used_at: datetime | None
    #: a security key's model, as its AAGUID and the name it is known by
    aaguid: str | None = None
    authenticator: str | None = None
    #: a security key that holds a discoverable credential (it can start a sign-in)
    resident_key: bool | None = None

    @classmethod
    def of(cls, a: Association) -> MethodView:
        details = a.details or {}
        resident = details.get("resident_key")
        return cls(
            id=a.id,
            card_id=a.card_id,
            organisation_id=a.organisation_id,
            method=a.method,
            lookup_key=a.lookup_key,
            label=a.label,
            status=a.status,
            created_at=a.created_at,
            last_used_at=a.last_used_at,
            aaguid=details.get("aaguid"),
            authenticator=details.get("authenticator"),
            resident_key=None if resident is None else bool(resident),
        )


@dataclass(frozen=True, kw_only=True)
class CardSummary:
    """A card's identity and status after a change (lock, revocation): never key material."""

    id: str
    serial: str
    person_id: str
    organisation_id: str
    status: str
    status_reason: str | None
    status_changed_at: datetime

    @classmethod
    def of(cls, card: Card) -> CardSummary:
        return cls(
            id=card.id,
            serial=card.serial,
            person_id=card.person_id,
            organisation_id=card.organisation_id,
            status=card.status,
            status_reason=card.status_reason,
            status_changed_at=card.status_changed_at,
        )
