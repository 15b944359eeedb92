"""A card and what hangs off it: key slots, questions, certificates, methods."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cardvault.domain.vocabulary import CardStatus, MethodKind, MethodStatus
from cardvault.json_types import JsonObject
from cardvault.store.models.base import Base, _created, _id
from cardvault.store.models.organisations import Person
from cardvault.store.types import StrEnumType


class Card(Base):
    __tablename__ = "cards"
    id: Mapped[str] = _id()
    serial: Mapped[str] = mapped_column(String(20), unique=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.id"), index=True)
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    status: Mapped[CardStatus] = mapped_column(
        StrEnumType(CardStatus, 10), default=CardStatus.ISSUED
    )
    key_algorithm: Mapped[str] = mapped_column(String(10))
    #: CardKeyRecord sealed under the master key; NULL once revoked (crypto-shredded)
    key_record: Mapped[bytes | None] = mapped_column(LargeBinary)
    record_version: Mapped[int] = mapped_column(Integer, default=1)
    mk_version: Mapped[int] = mapped_column(Integer, default=1)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: wrong security answers / recovery codes / second factors on the portal, across links;
    #: reserved before the KDF like passcode attempts, reset by a completed recovery
    recovery_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: consecutive wrong second-factor answers across all transactions and doors; reserved
    #: before each check like passcode attempts, reset by a right one (services/factor_lockout)
    second_factor_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    lock_reason: Mapped[str | None] = mapped_column(String(200))
    #: the status to return to when a lock is lifted
    locked_from: Mapped[CardStatus | None] = mapped_column(StrEnumType(CardStatus, 10))
    #: the status to return to when a suspension is lifted
    suspended_from: Mapped[CardStatus | None] = mapped_column(StrEnumType(CardStatus, 10))
    status_reason: Mapped[str | None] = mapped_column(String(500))
    status_changed_at: Mapped[datetime] = _created()
    created_at: Mapped[datetime] = _created()
    person: Mapped[Person] = relationship(lazy="raise")


class KeySlotInfo(Base):
    """What slots a card has, without their material (which lives in the sealed record)."""

    __tablename__ = "key_slots"
    __table_args__ = (UniqueConstraint("card_id", "name"),)
    id: Mapped[str] = _id()
    card_id: Mapped[str] = mapped_column(ForeignKey("cards.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(20))
    kdf: Mapped[JsonObject | None] = mapped_column(JSON)
    generation: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = _created()


class SecurityQuestion(Base):
    """The questions (never the answers) a holder chose at enrolment."""

    __tablename__ = "security_questions"
    __table_args__ = (UniqueConstraint("card_id", "position"),)
    id: Mapped[str] = _id()
    card_id: Mapped[str] = mapped_column(ForeignKey("cards.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    question: Mapped[str] = mapped_column(String(200))


class Certificate(Base):
    __tablename__ = "certificates"
    id: Mapped[str] = _id()
    card_id: Mapped[str] = mapped_column(ForeignKey("cards.id"), index=True)
    usage: Mapped[str] = mapped_column(String(30))
    serial_hex: Mapped[str] = mapped_column(String(64), index=True)
    subject: Mapped[str] = mapped_column(String(500))
    issuer: Mapped[str] = mapped_column(String(500))
    not_before: Mapped[datetime]
    not_after: Mapped[datetime]
    fingerprint_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    pem: Mapped[str] = mapped_column(Text)
    #: valid, on_hold (suspended: certificateHold) or revoked
    status: Mapped[str] = mapped_column(String(10), default="valid")
    revoked_at: Mapped[datetime | None]
    #: the RFC 5280 reason name (keyCompromise, superseded, certificateHold, …)
    revocation_reason: Mapped[str | None] = mapped_column(String(30))
    #: hex key identifier of this service's CA that issued it; NULL for another CA's
    ca_key_id: Mapped[str | None] = mapped_column(String(64), index=True)
    #: when the holder was told it expires soon (once per certificate)
    expiry_notified_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created()


class CrlState(Base):
    """The current CRL of one issuing CA: its number only grows (RFC 5280 §5.2.3)."""

    __tablename__ = "crls"
    ca_key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    number: Mapped[int] = mapped_column(BigInteger)
    this_update: Mapped[datetime]
    next_update: Mapped[datetime]
    der: Mapped[bytes] = mapped_column(LargeBinary)


class CertificateRequest(Base):
    """A CSR exported for an external CA, waiting for its certificate."""

    __tablename__ = "certificate_requests"
    id: Mapped[str] = _id()
    card_id: Mapped[str] = mapped_column(ForeignKey("cards.id"), index=True)
    usage: Mapped[str] = mapped_column(String(30))
    csr_pem: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    created_at: Mapped[datetime] = _created()


class Association(Base):
    """An authentication method bound to a card for one organisation."""

    __tablename__ = "associations"
    __table_args__ = (UniqueConstraint("organisation_id", "method", "lookup_key"),)
    id: Mapped[str] = _id()
    card_id: Mapped[str] = mapped_column(ForeignKey("cards.id"), index=True)
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    method: Mapped[MethodKind] = mapped_column(StrEnumType(MethodKind, 20))
    #: normalised identifier, unique per organisation and method (AD name, UID, credential id)
    lookup_key: Mapped[str] = mapped_column(String(300))
    label: Mapped[str | None] = mapped_column(String(100))
    details: Mapped[JsonObject] = mapped_column(JSON, default=dict)
    #: method secret (e.g. TOTP seed) sealed under the master key, bound to this row's id
    sealed_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: monotonic counter: last accepted TOTP step, FIDO2 sign count
    counter: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[MethodStatus] = mapped_column(
        StrEnumType(MethodStatus, 10), default=MethodStatus.ACTIVE
    )
    created_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = _created()
    last_used_at: Mapped[datetime | None]


class AdAccount(Base):
    """An AD domain\\account bound to a card in one organisation (via its association)."""

    __tablename__ = "ad_accounts"
    __table_args__ = (UniqueConstraint("organisation_id", "domain", "account"),)
    id: Mapped[str] = _id()
    association_id: Mapped[str] = mapped_column(
        ForeignKey("associations.id", ondelete="CASCADE"), unique=True
    )
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    domain: Mapped[str] = mapped_column(String(100))
    account: Mapped[str] = mapped_column(String(100))
    #: the account's Windows SID, for the certificate's strong-mapping extension
    sid: Mapped[str | None] = mapped_column(String(190))
