"""Sign-ins in progress and the sessions they open (card, browser), and used nonces."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from cardvault.domain.vocabulary import AuthState, RaRole
from cardvault.json_types import JsonObject
from cardvault.store.models.base import Base, _created, _id
from cardvault.store.types import StrEnumType


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


class UsedNonce(Base):
    """Envelope ``jti`` values seen, kept until they expire: a replay is refused."""

    __tablename__ = "used_nonces"
    nonce: Mapped[str] = mapped_column(String(100), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)
