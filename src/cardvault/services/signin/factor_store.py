"""The second-factor plug-ins' store: their reads and atomic statements, on the engine's
database session (DESIGN §3.2). Plug-ins see :class:`~cardvault.services.signin.factors.base.
FactorContext` only; this is the one place their queries are written, so that a plug-in
cannot reach the database any other way.

Each "take" is a conditional UPDATE (``… WHERE step < :step``, ``… WHERE status =
'approved'``): of any number of concurrent answers exactly one wins, on any number of
server instances.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

from sqlalchemy import bindparam, update
from sqlalchemy.orm import Session

from cardvault import json_types
from cardvault.domain.push_policy import PushStatus
from cardvault.domain.vocabulary import AuthState, MethodKind
from cardvault.domain.webauthn import StoredCredential, WebAuthnPolicy
from cardvault.errors import CardvaultError
from cardvault.json_types import JsonObject
from cardvault.services.cards.methods import open_secret
from cardvault.services.devices import push
from cardvault.services.devices.channel import active_devices, connected, open_totp
from cardvault.services.security_keys import keys as security_keys
from cardvault.services.security_keys.signin import consume_proof
from cardvault.services.signin.factors import fido2
from cardvault.services.signin.factors.base import (
    BoundMethod,
    FactorContext,
    FactorOrganisation,
    KeyVerified,
    PairedDevice,
    ProofSpent,
    PushSeen,
)
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import (
    Association,
    AuthTransaction,
    Card,
    Device,
    Organisation,
    PushChallenge,
    table_of,
)
from cardvault.store.queries import card_rows
from cardvault.store.queries.card_rows import MethodRow
from cardvault.store.queries.organisations import AnyOrg, policy_of

_Row = TypeVar("_Row")

# Built once with bound parameters: every sign-in runs both, and SQLAlchemy reuses the
# compiled form of a statement object it has seen. The card's active methods of every kind
# in one query, as plain rows: the plug-ins' offers (authenticator apps, security keys, HR
# cards) and the check of the answer then read the same rows (issue 16: one query, not one
# per plug-in, and no ORM object per method).
_ACTIVE_METHODS = card_rows.ACTIVE_METHOD_ROWS
# each time step is taken once, atomically: the UPDATE wins only below the stored step
_APPS = table_of(Association)
_TAKE_STEP = (
    update(_APPS)
    .where(_APPS.c.id == bindparam("app_id"), _APPS.c.counter < bindparam("step"))
    .values(counter=bindparam("step"), last_used_at=bindparam("used_at"))
    .returning(_APPS.c.id)
)


def factor_organisation(org: AnyOrg) -> FactorOrganisation:
    """An organisation row as plug-ins see it."""
    return FactorOrganisation(id=org.id, code=org.code, policy=policy_of(org))


def factor_context(
    session: Session, rt: Runtime, actor: Actor, card: Card, org: AnyOrg, txn: AuthTransaction
) -> FactorContext:
    """What plug-ins may use for this card in this organisation, in this transaction."""
    store = SessionFactorStore(session, rt, actor, card, org, txn)
    return FactorContext(
        card_id=card.id,
        organisation=factor_organisation(org),
        transaction_id=txn.id,
        route=txn.method,
        now=store.now,
        store=store,
    )


def _bound(row: Association | MethodRow) -> BoundMethod:
    return BoundMethod(id=row.id, label=row.label, lookup_key=row.lookup_key)


class SessionFactorStore:
    """:class:`~cardvault.services.signin.factors.base.FactorStore` on a live session."""

    def __init__(
        self,
        session: Session,
        rt: Runtime,
        actor: Actor,
        card: Card,
        org: AnyOrg,
        txn: AuthTransaction,
    ) -> None:
        self._session, self._rt, self._actor = session, rt, actor
        self._card, self._org, self._txn = card, org, txn
        self.now: datetime = rt.clock()
        self._methods: list[MethodRow] | None = None
        self._keys: dict[str, list[Association]] = {}

    def organisation(self, organisation_id: str) -> FactorOrganisation | None:
        """Another organisation of the holder."""
        org = self._session.get(Organisation, organisation_id)
        return None if org is None else factor_organisation(org)

    def factor_state(self) -> JsonObject:
        """The transaction's factor state as it is now."""
        return self._txn.factor_state

    def save_factor_state(self, key: str, value: JsonObject) -> None:
        """Keep ``value`` under ``key``."""
        # a JSON column: assign a new dict so that the change is written
        self._txn.factor_state = {**self._txn.factor_state, key: value}

    # -- paired phones ---------------------------------------------------------------------

    def _devices(self) -> list[Device]:
        return active_devices(self._session, self._card.id, self._org.id)

    def paired_devices(self) -> list[PairedDevice]:
        """The card's active phones in the organisation."""
        return [
            PairedDevice(id=d.id, name=d.name, has_totp=d.sealed_totp_secret is not None)
            for d in self._devices()
        ]

    def connected(self, device_ids: list[str]) -> set[str]:
        """The phones listening now."""
        return connected(self._rt, device_ids)

    def take_approved_push(self, challenge_id: str) -> str | None:
        """The approved push of this transaction becomes ``used``, once."""
        return self._session.scalar(
            update(PushChallenge)
            .where(
                PushChallenge.id == challenge_id,
                PushChallenge.transaction_id == self._txn.id,
                PushChallenge.status == PushStatus.APPROVED,
                PushChallenge.expires_at > self.now,
            )
            .values(status=PushStatus.USED)
            .returning(PushChallenge.device_id)
        )

    def push_seen(self, challenge_id: str) -> PushSeen | None:
        """This transaction's push as it stands."""
        row = self._session.get(PushChallenge, challenge_id)
        if row is None or row.transaction_id != self._txn.id:
            return None
        return PushSeen(status=PushStatus(row.status), expires_at=row.expires_at)

    def open_device_totp(self, device_id: str) -> bytearray:
        """The phone's TOTP secret."""
        return open_totp(self._rt.master_key, self._row(Device, device_id))

    def take_device_step(self, device_id: str, step: int) -> bool:
        """The phone's time step, taken once."""
        won = self._session.scalar(
            update(Device)
            .where(Device.id == device_id, Device.totp_last_step < step)
            .values(totp_last_step=step)
            .returning(Device.id)
        )
        return won is not None

    def code_accepted_on(self, device_id: str) -> None:
        """Seen now; the transaction's open pushes close."""
        self._row(Device, device_id).last_seen_at = self.now
        holder = self._actor.as_holder(self._card.person_id)
        push.cancel_for_transaction(self._session, self._rt, self._txn, holder)

    # -- authenticator apps ----------------------------------------------------------------

    def _active(self, method: MethodKind) -> list[MethodRow]:
        """The card's active methods of one kind in this organisation, oldest first; all
        kinds are read at once, once per request (offers, then the answer's check)."""
        if self._methods is None:
            params = {"card": self._card.id, "organisation": self._org.id}
            rows = self._session.connection().execute(_ACTIVE_METHODS, params)
            self._methods = [MethodRow(*r) for r in rows]
        return [a for a in self._methods if a.method == method]

    def authenticator_apps(self) -> list[BoundMethod]:
        """The card's active apps."""
        return [_bound(a) for a in self._active(MethodKind.TOTP)]

    def open_app_secret(self, app_id: str) -> bytearray:
        """The app's TOTP secret (its row as the offer read it: no lookup per app tried)."""
        row = next((a for a in self._active(MethodKind.TOTP) if a.id == app_id), None)
        return open_secret(self._rt.master_key, row or self._row(Association, app_id))

    def take_app_step(self, app_id: str, step: int) -> bool:
        """The app's time step, taken once."""
        # on the table, not through the ORM: nothing in this session reads the counter (or
        # when the app was last used) back
        won = self._session.connection().scalar(
            _TAKE_STEP, {"app_id": app_id, "step": step, "used_at": self.now}
        )
        return won is not None

    # -- HR cards --------------------------------------------------------------------------

    def hr_cards(self) -> list[BoundMethod]:
        """The card's active HR cards in the organisation."""
        return [_bound(a) for a in self._active(MethodKind.HR_CARD)]

    def hr_card_used(self, hr_card_id: str) -> None:
        """Tapped now."""
        self._row(Association, hr_card_id).last_used_at = self.now

    # -- security keys ---------------------------------------------------------------------

    def security_keys(self, organisation_id: str) -> list[BoundMethod]:
        """The card's active keys in ``organisation_id``."""
        # the keys as ORM rows (an assertion's check and its counter need them), read only
        # when the organisation's plain rows (read for every sign-in anyway) show some
        mine = organisation_id == self._org.id
        if mine and not self._active(MethodKind.SECURITY_KEY):
            keys = []
        else:
            keys = security_keys.active_keys(self._session, self._card.id, organisation_id)
        self._keys[organisation_id] = keys
        return [_bound(k) for k in keys]

    def key_credentials(self, key_ids: list[str]) -> list[StoredCredential]:
        """The keys' stored credentials (rows already in the session: no query)."""
        return [security_keys.stored_credential(self._row(Association, k)) for k in key_ids]

    def webauthn_policy(self, organisation_id: str) -> WebAuthnPolicy:
        """The organisation's relying-party policy."""
        org = self._session.get(Organisation, organisation_id)
        return security_keys.policy_for(self._rt.settings, org)

    def verify_assertion(
        self, organisation_id: str, state: JsonObject, response: JsonObject
    ) -> KeyVerified:
        """One of the card's keys in the organisation, checked; its counter advanced."""
        org = self._row(Organisation, organisation_id)
        candidates = self._keys.get(org.id)
        if candidates is None:
            candidates = security_keys.active_keys(self._session, self._card.id, org.id)
        verified = security_keys.verify_assertion(
            self._session,
            self._rt.settings,
            org=org,
            state=state,
            candidates=candidates,
            response=response,
            now=self.now,
        )
        return KeyVerified(
            key_id=verified.association.id,
            label=verified.association.label,
            user_verified=verified.result.user_verified,
            sign_count=verified.result.new_sign_count,
        )

    def audit_clone(self, exc: CardvaultError, key_id: str | None, organisation_id: str) -> None:
        """A suspected clone's own audit event, in ``organisation_id``'s chain."""
        assoc = None if key_id is None else self._session.get(Association, key_id)
        security_keys.audit_clone(
            self._session,
            self._rt,
            self._actor,
            exc,
            assoc=assoc,
            org_id=organisation_id,
            details={"transaction": self._txn.id},
        )

    def consume_proof(self, proof: str) -> ProofSpent | None:
        """The key sign-in's proof, spent once on this card and organisation."""
        row = consume_proof(
            self._session, proof, card_id=self._card.id, organisation_id=self._org.id, now=self.now
        )
        if row is None:
            return None
        nickname = json_types.text_or_none(row.details, "nickname")
        return ProofSpent(association_id=row.association_id, nickname=nickname)

    def _row(self, model: type[_Row], row_id: str) -> _Row:
        row = self._session.get(model, row_id)
        assert row is not None, f"{model.__name__} {row_id} is gone"
        return row


def pending_key_options(rt: Runtime, transaction_id: str) -> JsonObject | None:
    """The ``navigator.credentials.get`` options a sign-in in progress is waiting for (for a
    web page that receives them in a second request), or None when there is no unanswered
    security-key challenge in a live transaction."""
    with rt.db() as session:
        txn = session.get(AuthTransaction, transaction_id[:36])
        if txn is None or txn.state != AuthState.SECOND_FACTOR or rt.clock() >= txn.expires_at:
            return None
        challenge = fido2.challenge_of(txn.factor_state)
        return None if challenge is None or challenge.used else challenge.options
