"""The second-factor plug-in port (DESIGN §3.2): the engine asks, plug-ins answer.

A plug-in says whether it can be offered for a card in an organisation (and what the
client needs to start it, such as a push number), and verifies a response inside the
engine's database transaction. Push, FIDO2, HR card and mobile methods plug in here
without changes to the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TypeAlias

from cardvault.domain.org_policy import OrganisationPolicy
from cardvault.domain.push_policy import PushStatus
from cardvault.domain.webauthn import StoredCredential, WebAuthnPolicy
from cardvault.errors import CardvaultError
from cardvault.json_types import JsonObject, JsonValue

# --- what a plug-in sees -------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class FactorOrganisation:
    """An organisation as a plug-in sees it: who it is and its (parsed) policy."""

    id: str
    code: str
    policy: OrganisationPolicy


@dataclass(frozen=True, kw_only=True)
class PairedDevice:
    """One of the card's paired phones in the organisation."""

    id: str
    name: str
    has_totp: bool


@dataclass(frozen=True, kw_only=True)
class BoundMethod:
    """An authentication method bound to the card (an authenticator app, an HR card, a
    security key): ``lookup_key`` is how it is found (an HR card's UID, a key's credential
    id), never a secret."""

    id: str
    label: str | None
    lookup_key: str


@dataclass(frozen=True, kw_only=True)
class PushSeen:
    """A push of this transaction as it stands (its status as stored, and its expiry)."""

    status: PushStatus
    expires_at: datetime


@dataclass(frozen=True, kw_only=True)
class KeyVerified:
    """A security key's assertion that checked out (its counter has been advanced)."""

    key_id: str
    label: str | None
    user_verified: bool
    sign_count: int


@dataclass(frozen=True, kw_only=True)
class ProofSpent:
    """The proof of a sign-in that started from a security key, spent on this transaction."""

    association_id: str | None
    nickname: str | None


class FactorStore(Protocol):
    """What a plug-in may read and change, inside the engine's database transaction, about
    the context's card in the context's organisation (and this transaction). Each change is
    one atomic statement the store owns: a plug-in never holds a session or a row."""

    def organisation(self, organisation_id: str) -> FactorOrganisation | None:
        """Another organisation of the holder (a reset asks in several)."""

    def factor_state(self) -> JsonObject:
        """What plug-ins keep in the transaction between requests, as it is now."""

    def save_factor_state(self, key: str, value: JsonObject) -> None:
        """Keep ``value`` under ``key`` in the transaction's factor state."""

    # paired phones
    def paired_devices(self) -> list[PairedDevice]:
        """The card's active paired phones in the organisation."""

    def connected(self, device_ids: list[str]) -> set[str]:
        """Of ``device_ids``, the phones listening now."""

    def take_approved_push(self, challenge_id: str) -> str | None:
        """Turn this transaction's approved, unexpired push into ``used`` (once, atomically);
        the device that approved it, or None."""

    def push_seen(self, challenge_id: str) -> PushSeen | None:
        """This transaction's push as it stands, or None when it is not this transaction's."""

    def open_device_totp(self, device_id: str) -> bytearray:
        """The phone's TOTP secret (the caller wipes it)."""

    def take_device_step(self, device_id: str, step: int) -> bool:
        """Take the phone's time step (atomically, only above the last one taken)."""

    def code_accepted_on(self, device_id: str) -> None:
        """The phone's code opened the sign-in: it was seen now, and open pushes close."""

    # authenticator apps
    def authenticator_apps(self) -> list[BoundMethod]:
        """The card's active authenticator apps in the organisation (read once a request)."""

    def open_app_secret(self, app_id: str) -> bytearray:
        """The app's TOTP secret (the caller wipes it)."""

    def take_app_step(self, app_id: str, step: int) -> bool:
        """Take the app's time step (atomically, only above the last one taken)."""

    # HR cards
    def hr_cards(self) -> list[BoundMethod]:
        """The card's active HR cards in the organisation."""

    def hr_card_used(self, hr_card_id: str) -> None:
        """The HR card was tapped now."""

    # security keys
    def security_keys(self, organisation_id: str) -> list[BoundMethod]:
        """The card's active security keys in ``organisation_id``."""

    def key_credentials(self, key_ids: list[str]) -> list[StoredCredential]:
        """The stored credentials of keys :meth:`security_keys` listed, for a challenge."""

    def webauthn_policy(self, organisation_id: str) -> WebAuthnPolicy:
        """The relying-party policy of ``organisation_id``."""

    def verify_assertion(
        self, organisation_id: str, state: JsonObject, response: JsonObject
    ) -> KeyVerified:
        """Check an assertion by one of the card's keys in ``organisation_id`` and advance
        its counter; raises the ``domain.webauthn`` errors."""

    def audit_clone(self, exc: CardvaultError, key_id: str | None, organisation_id: str) -> None:
        """A refusal that suggests a cloned key gets an audit event of its own."""

    def consume_proof(self, proof: str) -> ProofSpent | None:
        """Spend the proof of a key sign-in on this card and organisation, once."""


@dataclass(frozen=True, kw_only=True)
class FactorContext:
    """What a plug-in may use to offer or check a factor: the card, the organisation, the
    transaction, the time, and the store's operations; never a database session or rows."""

    card_id: str
    organisation: FactorOrganisation
    transaction_id: str
    #: where the sign-in started (an HR card's factor is offered only after its own tap)
    route: str
    now: datetime
    store: FactorStore = field(repr=False)


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
