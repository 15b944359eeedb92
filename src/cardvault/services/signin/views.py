"""What the sign-in engine takes and gives back: the request, its result, the session granted."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from cardvault.services.signin.factors.base import FactorAnswer, FactorError, Offer


@dataclass(frozen=True, kw_only=True)
class LoginRequest:
    """A sign-in's first step: identifier, passcode and, optionally, the second factor inline."""

    identifier_kind: str
    identifier: str
    passcode: str = field(repr=False)
    purpose: str = "holder"
    organisation: str | None = None
    client_name: str | None = None
    second_factor: FactorAnswer | None = field(default=None, repr=False)


@dataclass(frozen=True, kw_only=True)
class SessionGrant:
    """An open card session: its token (for the client only), expiries and session channel."""

    token: str = field(repr=False)
    expires_at: datetime
    idle_expires_at: datetime
    card_serial: str
    organisation: str
    #: the session channel (DESIGN §3.5 revised): kid and CK
    session_id: str = ""
    channel_key: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, kw_only=True)
class OrganisationChoice:
    """One organisation a person may sign in to (code and name only; ``org_choice``)."""

    code: str
    name: str


@dataclass(frozen=True, kw_only=True)
class LoginResult:
    """A sign-in's answer: the offered second factors, or the session when one was given inline."""

    transaction_id: str
    session_key: bytes = field(repr=False)
    second_factors: tuple[Offer, ...]
    session: SessionGrant | None = None
    factor_error: FactorError | None = None
    #: when not empty, the organisation must be chosen first (``Engine.choose_organisation``)
    organisations: tuple[OrganisationChoice, ...] = ()
