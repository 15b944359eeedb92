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

from cardvault.errors import AuthenticationFailed
from cardvault.json_types import JsonObject, JsonValue
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import AuthTransaction, Card, Organisation


class FactorFailed(AuthenticationFailed):
    """A second factor did not check out; ``reason`` goes to the audit log.

    ``counts``: whether this was a wrong answer, which counts toward the card's
    second-factor lock (DESIGN §3.3 revised): a code, a number, a key's assertion, a tap
    that was checked and did not match. An answer that was missing or malformed, a replayed
    code, or a push refused on the phone (the phone's wrong number was counted when the
    phone answered) does not."""

    code = "second_factor_failed"

    def __init__(
        self, message: str, *, reason: str, code: str | None = None, counts: bool = True
    ) -> None:
        super().__init__(message, reason=reason)
        self.reason = reason
        self.counts = counts
        if code:
            self.code = code  # type: ignore[misc]


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
    method: str

    def offer(self, ctx: FactorContext) -> Offer | None:
        """What the client needs to use this factor, or None when the card has none."""

    def verify(self, ctx: FactorContext, answer: FactorAnswer) -> FactorOutcome:
        """Check the client's response; raise FactorFailed with a reason."""
