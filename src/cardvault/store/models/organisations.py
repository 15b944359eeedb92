"""Organisations, the people in them and the RA roles they hold."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cardvault.domain.vocabulary import RaRole, RoleGrantStatus
from cardvault.json_types import JsonObject
from cardvault.store.models.base import Base, _created, _id
from cardvault.store.types import StrEnumType


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
    #: when their last membership ended (a leaver of every organisation): the erasure clock
    #: starts here (issue 19); cleared when they join an organisation again
    left_at: Mapped[datetime | None] = mapped_column()


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


class RoleGrantRequest(Base):
    """A role grant that waits for a second RA manager's approval (issue 19): the requester
    cannot approve their own."""

    __tablename__ = "role_grant_requests"
    id: Mapped[str] = _id()
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.id"), index=True)
    role: Mapped[RaRole] = mapped_column(StrEnumType(RaRole, 20))
    requested_by: Mapped[str] = mapped_column(ForeignKey("persons.id"))
    status: Mapped[RoleGrantStatus] = mapped_column(
        StrEnumType(RoleGrantStatus, 20), default=RoleGrantStatus.PENDING
    )
    decided_by: Mapped[str | None] = mapped_column(ForeignKey("persons.id"))
    decided_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = _created()


class CardApproval(Base):
    """A sponsor's approval that a person of the organisation may be issued a card."""

    __tablename__ = "card_approvals"
    __table_args__ = (UniqueConstraint("person_id", "organisation_id"),)
    id: Mapped[str] = _id()
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.id"), index=True)
    approved_by: Mapped[str] = mapped_column(ForeignKey("persons.id"))
    created_at: Mapped[datetime] = _created()
