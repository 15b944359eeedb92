"""What the shells see of a card's authentication methods: frozen views, never the rows.

A method's secret (a TOTP seed, a credential's key) never leaves the store; the view has
what a person or an RA may read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cardvault import json_types
from cardvault.crypto import x509 as cx509
from cardvault.domain.vocabulary import CardStatus, MethodKind, MethodStatus
from cardvault.json_types import JsonObject, JsonValue
from cardvault.store.models import Association, Card, Certificate, KeySlotInfo, Person
from cardvault.store.rows import view_of


@dataclass(frozen=True, kw_only=True)
class MethodView:
    """An authentication method (association) bound to a card in one organisation."""

    id: str
    card_id: str
    organisation_id: str
    method: MethodKind
    #: the normalised identifier (AD name, HR card UID, credential id)
    lookup_key: str
    label: str | None
    status: MethodStatus
    created_at: datetime
    last_used_at: datetime | None
    #: a security key's model, as its AAGUID and the name it is known by
    aaguid: str | None = None
    authenticator: str | None = None
    #: a security key that holds a discoverable credential (it can start a sign-in)
    resident_key: bool | None = None

    @classmethod
    def of(cls, a: Association) -> MethodView:
        """The view of an association row."""
        details = a.details or {}
        resident = details.get("resident_key")
        return view_of(
            cls,
            a,
            aaguid=json_types.text_or_none(details, "aaguid"),
            authenticator=json_types.text_or_none(details, "authenticator"),
            resident_key=None if resident is None else bool(resident),
        )


@dataclass(frozen=True, kw_only=True)
class CardSummary:
    """A card's identity and status after a change (lock, revocation): never key material."""

    id: str
    serial: str
    person_id: str
    organisation_id: str
    status: CardStatus
    status_reason: str | None
    status_changed_at: datetime

    @classmethod
    def of(cls, card: Card) -> CardSummary:
        """The view of a card row."""
        return view_of(cls, card)


@dataclass(frozen=True, kw_only=True)
class CardInfo:
    """What may be shown of a card: status and counters, never key material."""

    serial: str
    status: CardStatus
    key_algorithm: str
    failed_attempts: int
    status_reason: str | None
    status_changed_at: datetime
    created_at: datetime
    #: why a locked card is locked, and the status it returns to when unlocked
    lock_reason: str | None
    locked_from: CardStatus | None

    @classmethod
    def of(cls, card: Card) -> CardInfo:
        """The view of a card row."""
        return view_of(cls, card)

    def as_json(self) -> JsonObject:
        """The card as JSON, for the CLI and the API."""
        return {
            "serial": self.serial,
            "status": self.status,
            "key_algorithm": self.key_algorithm,
            "failed_attempts": self.failed_attempts,
            "status_reason": self.status_reason,
            "status_changed_at": self.status_changed_at.isoformat(),
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True, kw_only=True)
class CertificateInfo:
    """A certificate of a card, as the shells show it."""

    usage: str
    #: as ``serial_hex`` writes it (rows stored before it hold lower-case hex without the
    #: leading zero)
    serial: str
    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    status: str
    fingerprint_sha256: str

    @classmethod
    def of(cls, cert: Certificate) -> CertificateInfo:
        """The view of a certificate row (serial in the usual hex form)."""
        return view_of(cls, cert, serial=cx509.serial_hex(int(cert.serial_hex, 16)))

    def as_json(self) -> JsonObject:
        """The certificate as JSON."""
        return {
            "usage": self.usage,
            "serial": self.serial,
            "subject": self.subject,
            "issuer": self.issuer,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "status": self.status,
            "fingerprint_sha256": self.fingerprint_sha256,
        }


@dataclass(frozen=True, kw_only=True)
class HolderInfo:
    """The holder of a card, as the shells show them."""

    user_id: str
    name: str
    email: str | None

    @classmethod
    def of(cls, person: Person) -> HolderInfo:
        """The view of the card holder's person row."""
        return cls(user_id=person.user_id, name=person.common_name, email=person.email)

    def as_json(self) -> JsonObject:
        """The holder as JSON."""
        return {"user_id": self.user_id, "name": self.name, "email": self.email}


@dataclass(frozen=True, kw_only=True)
class SlotInfo:
    """A key slot a card has (its material stays in the sealed record)."""

    name: str
    kind: str
    #: the KDF and its parameters, as stored (free-form per KDF)
    kdf: JsonValue

    @classmethod
    def of(cls, slot: KeySlotInfo) -> SlotInfo:
        """The view of a key slot (name and parameters, no material)."""
        return view_of(cls, slot)

    def as_json(self) -> JsonObject:
        """The slot as JSON."""
        return {"name": self.name, "kind": self.kind, "kdf": self.kdf}


def method_summary(m: MethodView) -> JsonObject:
    """A method as the card's JSON listing shows it."""
    return {
        "id": m.id,
        "method": m.method,
        "label": m.label,
        "identifier": m.lookup_key,
        "status": m.status,
    }


@dataclass(frozen=True, kw_only=True)
class CardView:
    """Everything about a card that may be shown; never key material."""

    card: CardInfo
    holder: HolderInfo
    certificates: tuple[CertificateInfo, ...]
    slots: tuple[SlotInfo, ...]
    associations: tuple[MethodView, ...]
    pending_csrs: tuple[str, ...]

    def as_json(self) -> JsonObject:
        """The card, its holder, slots, certificates and methods as JSON."""
        return {
            "card": self.card.as_json(),
            "holder": self.holder.as_json(),
            "certificates": [c.as_json() for c in self.certificates],
            "slots": [s.as_json() for s in self.slots],
            "associations": [method_summary(a) for a in self.associations],
            "pending_csrs": list(self.pending_csrs),
        }
