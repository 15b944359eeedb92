"""The data model: SQLAlchemy 2 typed tables, portable across SQLite and PostgreSQL.

One module per aggregate; this package re-exports every table so that Alembic and the
queries import ``from cardvault.store.models import X`` without knowing where it lives.

Secrets never sit here in clear: a card's keys and slots are one blob sealed under the
master key (``Card.key_record``); TOTP secrets and similar are sealed the same way;
tokens and links are stored as SHA-256 hashes only.
"""

from __future__ import annotations

from cardvault.store.models.audit import AuditCheckpoint, AuditEvent, AuditHead
from cardvault.store.models.base import NAMING, Base, table_of
from cardvault.store.models.cards import (
    AdAccount,
    Association,
    Card,
    Certificate,
    CertificateRequest,
    CrlState,
    KeySlotInfo,
    SecurityQuestion,
)
from cardvault.store.models.devices import Device, PushChallenge
from cardvault.store.models.links import Link
from cardvault.store.models.notifications import Notification
from cardvault.store.models.organisations import (
    CardApproval,
    Membership,
    Organisation,
    Person,
    RaRoleGrant,
    RoleGrantRequest,
)
from cardvault.store.models.piv import PivCard, PivLink
from cardvault.store.models.sessions import (
    AuthTransaction,
    CardSession,
    UsedNonce,
    WebAuthnCeremony,
    WebSession,
)

__all__ = [
    "NAMING",
    "AdAccount",
    "Association",
    "AuditCheckpoint",
    "AuditEvent",
    "AuditHead",
    "AuthTransaction",
    "Base",
    "Card",
    "CardApproval",
    "CardSession",
    "Certificate",
    "CertificateRequest",
    "CrlState",
    "Device",
    "KeySlotInfo",
    "Link",
    "Membership",
    "Notification",
    "Organisation",
    "Person",
    "PivCard",
    "PivLink",
    "PushChallenge",
    "RaRoleGrant",
    "RoleGrantRequest",
    "SecurityQuestion",
    "UsedNonce",
    "WebAuthnCeremony",
    "WebSession",
    "table_of",
]
