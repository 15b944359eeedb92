"""The data model: SQLAlchemy 2 typed tables, portable across SQLite and PostgreSQL.

Secrets never sit here in clear: a card's keys and slots are one blob sealed under the
master key (``Card.key_record``); TOTP secrets and similar are sealed the same way;
tokens and links are stored as SHA-256 hashes only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from cardvault.domain.push_policy import PushStatus
from cardvault.domain.vocabulary import (
    AuthState,
    CardStatus,
    MethodKind,
    MethodStatus,
    NotificationStatus,
    RaRole,
)
from cardvault.json_types import JsonObject
from cardvault.store.types import StrEnumType, UtcDateTime, new_id, utcnow

# the vocabulary is imported from here by code written before it moved to domain/
__all__ = ["AuthState", "CardStatus", "MethodKind", "MethodStatus", "RaRole"]

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime()}


def table_of(model: type[Base]) -> Table:
    """A model's Core table, for statements built once on the hot path (typed as Table,
    which ``Model.__table__`` is not)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _id() -> Mapped[str]:
    return mapped_column(String(36), primary_key=True, default=new_id)


def _created() -> Mapped[datetime]:
    return mapped_column(default=utcnow)


class Organisation(Base):
    __tablename__ = "organisations"
    id: Mapped[str] = _id()
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    policy: Mapped[JsonObject] = mapped_column(JSON, default=dict)
    allowed_networks: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = _created()


class Person(Base):
    __tablename__ = "persons"
    id: Mapped[str] = _id()
    user_id: Mapped[str] = mapped_column(String(12), unique=True)
    forename: Mapped[str] = mapped_column(String(100))
    surname: Mapped[str] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    phone: Mapped[str | None] = mapped_column(String(20))
    common_name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = _created()


class Membership(Base):
    """A person belongs to an organisation; their card works there (DESIGN §3.6)."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("person_id", "organisation_id"),)
    id: Mapped[str] = _id()
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.id"), index=True)
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    created_at: Mapped[datetime] = _created()


class RaRoleGrant(Base):
    __tablename__ = "ra_roles"
    __table_args__ = (UniqueConstraint("person_id", "organisation_id", "role"),)
    id: Mapped[str] = _id()
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.id"), index=True)
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    role: Mapped[RaRole] = mapped_column(StrEnumType(RaRole, 20))
    granted_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = _created()


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


class Device(Base):
    """A paired phone: authenticator app or mobile identity agent."""

    __tablename__ = "devices"
    id: Mapped[str] = _id()
    card_id: Mapped[str] = mapped_column(ForeignKey("cards.id"), index=True)
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    platform: Mapped[str] = mapped_column(String(40))
    application: Mapped[str] = mapped_column(String(20))
    public_key_der: Mapped[bytes] = mapped_column(LargeBinary)
    sealed_totp_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_last_step: Mapped[int] = mapped_column(BigInteger, default=0)
    biometric_slot: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(10), default="active")
    created_at: Mapped[datetime] = _created()
    last_seen_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class AuthTransaction(Base):
    """An authentication in progress (DESIGN §3.2 steps 1 to 3)."""

    __tablename__ = "auth_transactions"
    id: Mapped[str] = _id()
    card_id: Mapped[str | None] = mapped_column(ForeignKey("cards.id"), index=True)
    organisation_id: Mapped[str | None] = mapped_column(ForeignKey("organisations.id"))
    #: how the transaction started: a SignInRoute for a sign-in, "sms_code" for an
    #: invitation, "answers"/"recovery_code" for a passcode reset
    method: Mapped[str] = mapped_column(String(20))
    purpose: Mapped[str] = mapped_column(String(20), default="holder")
    state: Mapped[AuthState] = mapped_column(StrEnumType(AuthState, 20))
    #: wrap(DEK, SK) once the passcode opened the card; SK is only with the client
    session_wrap: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: a second factor's own state between offer and answer (its shape is the plug-in's)
    factor_state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    factor_failures: Mapped[int] = mapped_column(Integer, default=0)
    client_address: Mapped[str | None] = mapped_column(String(64))
    client_name: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = _created()
    expires_at: Mapped[datetime]


class WebAuthnCeremony(Base):
    """A WebAuthn ceremony begun outside a sign-in transaction (DESIGN §3.2): a security key
    registration by an RA, or a security key sign-in that starts from the key itself.

    ``state`` holds the challenge until the one answer; a verified sign-in then leaves a
    single-use proof (only its SHA-256 is stored) that the passcode step consumes.
    """

    __tablename__ = "webauthn_ceremonies"
    id: Mapped[str] = _id()
    kind: Mapped[str] = mapped_column(String(12))
    #: pending → answered → verified → consumed; or failed
    status: Mapped[str] = mapped_column(String(10), default="pending")
    state: Mapped[JsonObject] = mapped_column(JSON, default=dict)
    organisation_id: Mapped[str | None] = mapped_column(ForeignKey("organisations.id"))
    card_id: Mapped[str | None] = mapped_column(ForeignKey("cards.id"))
    association_id: Mapped[str | None] = mapped_column(String(36))
    created_by: Mapped[str | None] = mapped_column(String(100))
    proof_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    details: Mapped[JsonObject] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = _created()
    expires_at: Mapped[datetime] = mapped_column(index=True)


class CardSession(Base):
    __tablename__ = "card_sessions"
    id: Mapped[str] = _id()
    card_id: Mapped[str] = mapped_column(ForeignKey("cards.id"), index=True)
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"))
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    session_wrap: Mapped[bytes] = mapped_column(LargeBinary)
    #: the session channel key CK sealed under the master key (DESIGN §3.5 revised)
    channel_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    purpose: Mapped[str] = mapped_column(String(20), default="holder")
    #: "route+factor" that opened the session (``email+totp``, ``qr+device``, ``mia+biometric``)
    method: Mapped[str] = mapped_column(String(20))
    client_address: Mapped[str | None] = mapped_column(String(64))
    #: for RA sessions: the organisation and role chosen after login
    acting_organisation_id: Mapped[str | None] = mapped_column(ForeignKey("organisations.id"))
    acting_role: Mapped[RaRole | None] = mapped_column(StrEnumType(RaRole, 20))
    created_at: Mapped[datetime] = _created()
    last_used_at: Mapped[datetime] = _created()
    expires_at: Mapped[datetime]
    idle_expires_at: Mapped[datetime]


class PivCard(Base):
    """A card's PIV applet (DESIGN §3.8): its state between APDUs and its sealed secrets.

    ``state`` is the card part of the applet state (``dump_state``, no security status);
    ``version`` moves with every change, so an APDU is committed only against the state it
    was computed from (compare-and-swap): concurrent PIN tries cannot both count from the
    same retry counter. ``secrets`` holds the PIN and PUK verifiers and the management key,
    sealed under the master key and bound to the card and ``secrets_version``.
    """

    __tablename__ = "piv_cards"
    card_id: Mapped[str] = mapped_column(
        ForeignKey("cards.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    secrets: Mapped[bytes] = mapped_column(LargeBinary)
    secrets_version: Mapped[int] = mapped_column(Integer, default=1)
    #: the public key of each generated slot (slot hex -> SPKI base64): public facts
    public_keys: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class PivLink(Base):
    """One virtual reader a card is inserted in: a connector relaying APDUs for a session.

    The link keeps what belongs to that connection (security status, data in flight) and
    dies with the card session it was opened in. An issuance link also keeps
    ``wrap(DEK, IK)``: IK is held only by the RA's connector.
    """

    __tablename__ = "piv_links"
    id: Mapped[str] = _id()
    card_id: Mapped[str] = mapped_column(ForeignKey("cards.id", ondelete="CASCADE"), index=True)
    session_id: Mapped[str] = mapped_column(
        ForeignKey("card_sessions.id", ondelete="CASCADE"), index=True
    )
    mode: Mapped[str] = mapped_column(String(10))
    link_state: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    issuance_wrap: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: the link's channel key sealed under the master key (DESIGN §3.5, §3.8 revised)
    channel_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: the last request's sequence number and its answer (sealed under a key from SK/IK),
    #: so that a request repeated after a network error is answered, not executed twice
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_response: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: HMAC of the PIN last verified on this link, keyed from SK/IK, sealed under the master
    #: key (services/piv/recheck.py): the same PIN again needs no second Argon2id run
    pin_recheck: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = _created()
    last_used_at: Mapped[datetime] = _created()


class UsedNonce(Base):
    """Envelope ``jti`` values seen, kept until they expire: a replay is refused."""

    __tablename__ = "used_nonces"
    nonce: Mapped[str] = mapped_column(String(100), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class Link(Base):
    """A single-use, time-limited token: unlock/reset link, invitation, device pairing."""

    __tablename__ = "links"
    __table_args__ = (Index("ix_links_card_purpose", "card_id", "purpose"),)
    id: Mapped[str] = _id()
    purpose: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    card_id: Mapped[str | None] = mapped_column(ForeignKey("cards.id"), index=True)
    person_id: Mapped[str | None] = mapped_column(ForeignKey("persons.id"))
    organisation_id: Mapped[str | None] = mapped_column(ForeignKey("organisations.id"))
    details: Mapped[JsonObject] = mapped_column(JSON, default=dict)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = _created()
    expires_at: Mapped[datetime]
    consumed_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class Notification(Base):
    """Transactional outbox: written with the change, sent after the commit.

    ``context`` holds what the template shows that is not secret (name, time); a message's
    own link or code is in ``sealed_secrets``, sealed under the master key and bound to the
    row's id, and erased once the message is sent or has failed for good. A dispatcher
    claims a row with a conditional UPDATE (``claimed_by``/``claimed_until`` is its lease).
    """

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_due", "status", "next_attempt_at"),
        Index("ix_notifications_org_status", "organisation_id", "status"),
    )
    id: Mapped[str] = _id()
    channel: Mapped[str] = mapped_column(String(10))
    recipient: Mapped[str] = mapped_column(String(254))
    template: Mapped[str] = mapped_column(String(50))
    context: Mapped[JsonObject] = mapped_column(JSON, default=dict)
    organisation_id: Mapped[str | None] = mapped_column(ForeignKey("organisations.id"))
    card_id: Mapped[str | None] = mapped_column(ForeignKey("cards.id"))
    status: Mapped[NotificationStatus] = mapped_column(
        StrEnumType(NotificationStatus, 10), default=NotificationStatus.PENDING, index=True
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = _created()
    next_attempt_at: Mapped[datetime] = _created()
    sent_at: Mapped[datetime | None]
    sealed_secrets: Mapped[bytes | None] = mapped_column(LargeBinary)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None]
    #: a message whose link has expired before it could be sent is not sent at all
    expires_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]


class PushChallenge(Base):
    """A push sign-in request to a card's paired devices (number matching, single use).

    ``transaction_id`` is cleared when the sign-in ends; the row stays for the back-off.
    """

    __tablename__ = "push_challenges"
    __table_args__ = (Index("ix_push_challenges_card_created", "card_id", "created_at"),)
    id: Mapped[str] = _id()
    transaction_id: Mapped[str | None] = mapped_column(
        ForeignKey("auth_transactions.id", ondelete="SET NULL"), index=True
    )
    card_id: Mapped[str] = mapped_column(ForeignKey("cards.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[PushStatus] = mapped_column(
        StrEnumType(PushStatus, 12), default=PushStatus.PENDING
    )
    context: Mapped[JsonObject] = mapped_column(JSON, default=dict)
    device_id: Mapped[str | None] = mapped_column(ForeignKey("devices.id"))
    created_at: Mapped[datetime] = _created()
    expires_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]


class AuditEvent(Base):
    """One link of an organisation's audit hash chain (DESIGN §3.7)."""

    __tablename__ = "audit_events"
    __table_args__ = (
        UniqueConstraint("chain", "seq"),
        Index("ix_audit_events_org_time", "organisation_id", "occurred_at"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    chain: Mapped[str] = mapped_column(String(40))
    seq: Mapped[int] = mapped_column(BigInteger)
    occurred_at: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(60))
    outcome: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(String(300))
    actor: Mapped[str | None] = mapped_column(String(100))
    person_id: Mapped[str | None] = mapped_column(String(36), index=True)
    card_id: Mapped[str | None] = mapped_column(String(36), index=True)
    organisation_id: Mapped[str | None] = mapped_column(String(36))
    request_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[JsonObject] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The last link of each chain, written and signed once by each transaction that
    appends to the chain, as it commits; a truncated chain no longer matches it."""

    __tablename__ = "audit_heads"
    chain: Mapped[str] = mapped_column(String(40), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    #: Ed25519 signature of the head by the service's audit key: a truncated chain
    #: cannot be given a matching head without that key
    signed_at: Mapped[str | None] = mapped_column(String(32))
    signature: Mapped[bytes | None] = mapped_column(LargeBinary)


class AuditCheckpoint(Base):
    """A chain head signed with the service's audit key."""

    __tablename__ = "audit_checkpoints"
    id: Mapped[str] = _id()
    chain: Mapped[str] = mapped_column(String(40), index=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[str] = mapped_column(String(32))
    signature: Mapped[bytes] = mapped_column(LargeBinary)


class WebSession(Base):
    """A browser's session with one web area (``ra``, ``portal``): cookie token hashed.

    Before sign-in it carries only CSRF binding and short-lived page state; after sign-in it
    points at the card session the engine opened (``card_session_id``), which is the source
    of truth: when that card session ends (logout, lock, expiry), so does this one.
    """

    __tablename__ = "web_sessions"
    id: Mapped[str] = _id()
    area: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    person_id: Mapped[str | None] = mapped_column(String(36))
    card_session_id: Mapped[str | None] = mapped_column(String(36), index=True)
    #: when the holder last proved passcode + second factor in this session
    authenticated_at: Mapped[datetime | None]
    #: small page state (sign-in in progress, ceremony states, one-time notices); never secrets
    data: Mapped[JsonObject] = mapped_column(JSON, default=dict)
    client_address: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = _created()
    last_seen_at: Mapped[datetime] = _created()
    idle_expires_at: Mapped[datetime] = mapped_column(index=True)
    expires_at: Mapped[datetime]
