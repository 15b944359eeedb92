"""The second-factor plug-in port (DESIGN §3.2): the engine asks, plug-ins answer.

A plug-in says whether it can be offered for a card in an organisation (and what the
client needs to start it, such as a push number), and verifies a response inside the
engine's database transaction. Push, FIDO2, HR card and mobile methods plug in here
without changes to the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import AuthTransaction, Card, Organisation


@dataclass(frozen=True, kw_only=True)
class FactorContext:
    rt: Runtime
    session: Session
    card: Card
    organisation: Organisation
    transaction: AuthTransaction
    actor: Actor
    now: datetime
    #: what a plug-in looked up while offering itself, for its verify in the same request
    #: (a sign-in with the code inline asks both in one transaction)
    looked_up: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class FactorOutcome:
    """What a verified factor tells the audit log (never a secret)."""

    label: str
    details: Mapping[str, Any]


class SecondFactor(Protocol):
    method: str

    def offer(self, ctx: FactorContext) -> dict[str, Any] | None:
        """What the client needs to use this factor, or None when the card has none."""

    def verify(self, ctx: FactorContext, response: Mapping[str, Any]) -> FactorOutcome:
        """Check the client's response; raise FactorFailed with a reason."""
