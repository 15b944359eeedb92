"""The second-factor plug-in port (DESIGN §3.2): the engine asks, plug-ins answer.

A plug-in says whether it can be offered for a card in an organisation (and what the
client needs to start it, such as a push number), and verifies a response inside the
engine's database transaction. Push, FIDO2, HR card and mobile methods plug in here
without changes to the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeAlias

from sqlalchemy.orm import Session

from cardvault.json_types import JsonObject, JsonValue
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import AuthTransaction, Card, Organisation


@dataclass(frozen=True, kw_only=True)
class FactorContext:
    """What a plug-in may use to offer or check a factor, inside the engine's transaction."""

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


# --- what a plug-in offers ----------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CodeOffer:
    """A one-time code from an authenticator app (RFC 6238): ask for ``digits`` digits."""

    method: str
    digits: int


@dataclass(frozen=True, kw_only=True)
class PushOffer:
    """The paired phone: a push with number matching (the number comes with the push the
    client then asks for), or the phone's own one-time code when ``totp``."""

    method: str
    devices: int
    connected: int
    totp: bool
    digits: int


@dataclass(frozen=True, kw_only=True)
class SecurityKeyOffer:
    """A security key: the labels of the card's keys, whether user verification is
    required, and the ``navigator.credentials.get`` options (WebAuthn §5.5, as the FIDO2
    library makes them: free-form JSON)."""

    method: str
    keys: tuple[str | None, ...]
    user_verification: bool
    options: JsonObject


@dataclass(frozen=True, kw_only=True)
class HrCardOffer:
    """The tap of the HR card the sign-in started from."""

    method: str


Offer: TypeAlias = CodeOffer | PushOffer | SecurityKeyOffer | HrCardOffer


# --- what the client answers ----------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class FactorAnswer:
    """The client's answer to an offer: ``method`` names the plug-in, which reads the
    fields it knows and refuses (``FactorFailed``, not counted) an answer without them.

    ``code``: a one-time code; ``challenge_id``: an approved push; ``credential``: a
    security key's assertion (``PublicKeyCredential.toJSON()``, free-form from outside);
    ``proof``: the proof of a sign-in that started from a security key (``has_proof``: the
    answer named one, even one that is not text); ``uid``: an HR card's tap."""

    method: str
    code: str | None = field(default=None, repr=False)
    challenge_id: str | None = None
    credential: JsonValue = field(default=None, repr=False)
    proof: str | None = field(default=None, repr=False)
    has_proof: bool = False
    uid: str | None = None


@dataclass(frozen=True, kw_only=True)
class FactorError:
    """Why the second factor that came with the passcode did not open a session."""

    code: str
    message: str


@dataclass(frozen=True, kw_only=True)
class FactorOutcome:
    """What a verified factor tells the audit log (never a secret)."""

    label: str
    details: JsonObject


class SecondFactor(Protocol):
    """A second-factor plug-in: what it offers for a card, and how it checks an answer."""

    method: str

    def offer(self, ctx: FactorContext) -> Offer | None:
        """What the client needs to use this factor, or None when the card has none."""

    def verify(self, ctx: FactorContext, answer: FactorAnswer) -> FactorOutcome:
        """Check the client's response; raise FactorFailed with a reason."""
