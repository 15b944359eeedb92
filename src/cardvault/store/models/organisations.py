"""Organisations, the people in them and the RA roles they hold."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cardvault.domain.vocabulary import RaRole
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
