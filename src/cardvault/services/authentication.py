"""The authentication engine (DESIGN §3.2, §3.3): identifier → passcode → second factor → session.

1. The identifier is resolved to a card and organisation; an unknown one costs the same KDF
   and gets the same answer as a wrong passcode (no user enumeration).
2. The passcode attempt is reserved atomically, then the passcode slot is opened (one KDF,
   admitted by the KDF gate). The DEK is at once re-wrapped under a fresh session key SK,
   which goes back to the client only; the service keeps ``wrap(DEK, SK)``.
3. A second-factor plug-in verifies the holder's response; the transaction becomes a card
   session. Every step is audited, failures with their reason.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardvault.crypto.aead import wipe
from cardvault.crypto.kdf import derive_key
from cardvault.crypto.keyslots import (
    WrongSecret,
    new_session_key,
    open_passcode_slot,
    wrap_for_session,
)
from cardvault.domain.org_policy import OrganisationPolicy
from cardvault.errors import AuthenticationFailed, InvalidInput
from cardvault.services import audit, card_sessions, lockout, network
from cardvault.services.card_keys import open_record
from cardvault.services.factors import FactorContext, FactorFailed, SecondFactor, codes, installed
from cardvault.services.identification import Target, resolve
from cardvault.services.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import AuthTransaction, Card, CardStatus, Organisation, Person
from cardvault.store.types import new_id

TRANSACTION_MINUTES = 5
MAX_FACTOR_FAILURES = 5
PURPOSES = ("holder", "ra")
GENERIC_FAILURE = (
    "Those sign-in details are not right, or this card cannot be used now. After three wrong "
    "passcodes a card locks and its holder gets an email to unlock it."
)


class SignInFailed(AuthenticationFailed):
    """Unknown identifier, wrong passcode, locked or unusable card: all look the same."""

    code = "sign_in_failed"

    def __init__(self) -> None:
        super().__init__(GENERIC_FAILURE)


class NoSecondFactor(AuthenticationFailed):
    code = "no_second_factor"


class TransactionInvalid(AuthenticationFailed):
    code = "transaction_invalid"


@dataclass(frozen=True, kw_only=True)
class LoginRequest:
    identifier_kind: str
    identifier: str
    passcode: str = field(repr=False)
    purpose: str = "holder"
    organisation: str | None = None
    client_name: str | None = None
    second_factor: Mapping[str, Any] | None = field(default=None, repr=False)


@dataclass(frozen=True, kw_only=True)
class SessionGrant:
    token: str = field(repr=False)
    expires_at: datetime
    idle_expires_at: datetime
    card_serial: str
    organisation: str


@dataclass(frozen=True, kw_only=True)
class LoginResult:
    transaction_id: str
    session_key: bytes = field(repr=False)
    second_factors: list[dict[str, Any]]
    session: SessionGrant | None = None
    factor_error: dict[str, Any] | None = None


class Engine:
    """The engine with its installed second factors (plug-ins)."""

    def __init__(self, rt: Runtime, factors: Mapping[str, SecondFactor] | None = None) -> None:
        self.rt = rt
        self.factors = dict(factors) if factors is not None else installed()

    # -- step 1 and 2 ----------------------------------------------------------------------

    def login(self, actor: Actor, req: LoginRequest) -> LoginResult:
        if req.purpose not in PURPOSES:
            raise InvalidInput("purpose is holder or ra.", field="purpose")
        if not req.passcode or len(req.passcode) > 256:
            raise InvalidInput("Enter your passcode.", field="passcode")
        target = self._identify(actor, req)
        dek = self._open_passcode(actor, target, req.passcode)
        sk = new_session_key()
        txn_id = new_id()
        try:
            wrap = wrap_for_session(dek, sk, session_id=txn_id)
        finally:
            wipe(dek)
        with transaction(self.rt.db) as session:
            return self._passcode_accepted(session, actor, req, target, txn_id, wrap, bytes(sk))

    def _identify(self, actor: Actor, req: LoginRequest) -> Target:
        with self.rt.db() as session:
            target = resolve(session, req.identifier_kind, req.identifier, req.organisation)
        if target is None:
            self._decoy(actor, req)
        assert target is not None
        network.check_client(target.organisation, actor.client_address)
        policy = OrganisationPolicy.from_dict(target.organisation.policy)
        method = "email" if target.method == "email" else target.method
        if not policy.allows(method):
            self._refuse(actor, target, f"sign-in with {method} not allowed by policy")
        if req.purpose == "ra" and not self._has_ra_role(target.person):
            self._refuse(actor, target, "no RA role")
        if target.card.status != CardStatus.ACTIVE.value:
            self._refuse(actor, target, f"card is {target.card.status}")
        return target

    def _has_ra_role(self, person: Person) -> bool:
        with self.rt.db() as session:
            return bool(card_sessions.ra_roles(session, person.id))

    def _decoy(self, actor: Actor, req: LoginRequest) -> None:
        """Unknown identifier: spend one KDF like a real attempt, audit, answer alike."""
        with self.rt.kdf_gate.slot():
            wipe(
                derive_key(req.passcode.encode(), secrets.token_bytes(16), self.rt.settings.argon2)
            )
        with transaction(self.rt.db) as session:
            audit.record(
                session,
                self.rt,
                actor,
                action="auth.login",
                outcome="failure",
                reason="unknown identifier",
                details={"identifier_kind": req.identifier_kind},
            )
        raise SignInFailed()

    def _refuse(self, actor: Actor, target: Target, reason: str) -> None:
        with transaction(self.rt.db) as session:
            self._audit(session, actor, target, "auth.login", "failure", reason)
        raise SignInFailed()

    def _open_passcode(self, actor: Actor, target: Target, passcode: str) -> bytearray:
        card = target.card
        with self.rt.kdf_gate.admitted():
            try:
                reserved = lockout.reserve_attempt(self.rt, card.id)
            except lockout.CardLocked as exc:
                self._refuse(actor, target, str(exc.data.get("reason", "card is locked")))
                raise
            with self.rt.kdf_gate.running():
                try:
                    return open_passcode_slot(open_record(self.rt.master_key, card), passcode)
                except WrongSecret:
                    pass
            lockout.passcode_wrong(self.rt, actor, card.id, reserved, action="auth.passcode")
            raise SignInFailed()

    def _passcode_accepted(
        self,
        session: Session,
        actor: Actor,
        req: LoginRequest,
        target: Target,
        txn_id: str,
        wrap: bytes,
        sk: bytes,
    ) -> LoginResult:
        card = session.get(Card, target.card.id, with_for_update=True)
        org = session.get(Organisation, target.organisation.id)
        assert card is not None and org is not None
        lockout.passcode_right(session, card)
        now = self.rt.clock()
        txn = AuthTransaction(
            id=txn_id,
            card_id=card.id,
            organisation_id=org.id,
            method=target.method,
            purpose=req.purpose,
            state="second_factor",
            session_wrap=wrap,
            client_address=actor.client_address,
            client_name=(req.client_name or "")[:100] or None,
            created_at=now,
            expires_at=now + timedelta(minutes=TRANSACTION_MINUTES),
        )
        session.add(txn)
        session.flush()
        self._audit(
            session,
            actor,
            target,
            "auth.passcode",
            "success",
            None,
            {"transaction": txn_id, "method": target.method, "purpose": req.purpose},
        )
        ctx = self._context(session, actor, card, org, txn)
        offers = [o for f in self.factors.values() if (o := f.offer(ctx)) is not None]
        if not offers:
            session.delete(txn)
            self._audit(
                session,
                actor,
                target,
                "auth.second_factor",
                "failure",
                "no second factor associated",
                {"transaction": txn_id},
            )
            error = NoSecondFactor(
                f"No second factor is set up for this card in {org.name}. Ask your RA to add one."
            )
            return LoginResult(
                transaction_id=txn_id,
                session_key=sk,
                second_factors=[],
                factor_error={"code": error.code, "message": error.message},
            )
        result = LoginResult(transaction_id=txn_id, session_key=sk, second_factors=offers)
        if req.second_factor is None:
            return result
        try:
            grant = self._verify_factor(
                ctx, req.second_factor, offered={o["method"] for o in offers}, person=target.person
            )
        except (FactorFailed, InvalidInput) as exc:
            # the passcode was right: keep its reset and the transaction, report the factor
            return LoginResult(
                transaction_id=txn_id,
                session_key=sk,
                second_factors=offers,
                factor_error={"code": exc.code, "message": exc.message},
            )
        return LoginResult(
            transaction_id=txn_id, session_key=sk, second_factors=offers, session=grant
        )

    # -- step 3 ----------------------------------------------------------------------------

    def complete_factor(
        self, actor: Actor, transaction_id: str, response: Mapping[str, Any]
    ) -> SessionGrant:
        failure: FactorFailed | None = None
        with transaction(self.rt.db) as session:
            ctx = self._waiting(session, actor, transaction_id)
            try:
                return self._verify_factor(ctx, response)
            except FactorFailed as exc:
                failure = exc
        assert failure is not None
        raise failure

    def complete_code(self, actor: Actor, transaction_id: str, code: str) -> SessionGrant:
        """A one-time code, tried against every code factor offered in this transaction
        (the paired phone's own code, an authenticator app): whoever types it cannot tell
        which app it belongs to. One code is one try: a refusal counts one failure."""
        failure: FactorFailed | None = None
        with transaction(self.rt.db) as session:
            ctx = self._waiting(session, actor, transaction_id)
            tried = [
                f for m in codes.METHODS if (f := self.factors.get(m)) and f.offer(ctx) is not None
            ]
            if not tried:
                raise InvalidInput("This sign-in cannot use a one-time code.", field="code")
            target = self._target(ctx)
            failures: dict[str, FactorFailed] = {}
            for factor in tried:
                try:
                    outcome = factor.verify(ctx, {"method": factor.method, "code": code})
                except FactorFailed as exc:
                    failures[factor.method] = exc
                    continue
                return self._open_session(ctx, target, factor.method, dict(outcome.details))
            failure = codes.telling(list(failures.values()))
            method = next(m for m, f in failures.items() if f is failure)
            self._factor_failed(ctx, target, method, failure)
        raise failure

    def _waiting(self, session: Session, actor: Actor, transaction_id: str) -> FactorContext:
        """The transaction as it waits for its second factor (locked for this database
        transaction), or TransactionInvalid."""
        txn = session.get(AuthTransaction, transaction_id, with_for_update=True)
        if (
            txn is None
            or txn.purpose not in PURPOSES  # a reset's transaction opens no session
            or txn.state != "second_factor"
            or self.rt.clock() >= txn.expires_at
        ):
            raise TransactionInvalid("This sign-in has expired or is unknown; start again.")
        card = session.get(Card, txn.card_id)
        org = session.get(Organisation, txn.organisation_id)
        assert card is not None and org is not None
        network.check_client(org, actor.client_address)
        if card.status != CardStatus.ACTIVE.value:
            session.delete(txn)
            raise TransactionInvalid("This card can no longer be used.")
        return self._context(session, actor, card, org, txn)

    def _verify_factor(
        self,
        ctx: FactorContext,
        response: Mapping[str, Any],
        *,
        offered: set[str] | None = None,
        person: Person | None = None,
    ) -> SessionGrant:
        """``offered``: the methods just offered in this transaction, so as not to ask the
        plug-ins again (a sign-in with the code inline); None asks them. ``person``: the
        holder, where the caller has already read them."""
        method = response.get("method")
        factor = self.factors.get(method) if isinstance(method, str) else None
        if factor is None or not self._offers(ctx, factor, offered):
            raise InvalidInput(
                f"Second factor {method!r} is not available for this card.", field="method"
            )
        target = self._target(ctx, person)
        try:
            outcome = factor.verify(ctx, response)
        except FactorFailed as exc:
            self._factor_failed(ctx, target, factor.method, exc)
            raise
        return self._open_session(ctx, target, factor.method, dict(outcome.details))

    @staticmethod
    def _offers(ctx: FactorContext, factor: SecondFactor, offered: set[str] | None) -> bool:
        return factor.method in offered if offered is not None else factor.offer(ctx) is not None

    def _factor_failed(
        self, ctx: FactorContext, target: Target, method: str, exc: FactorFailed
    ) -> None:
        txn = ctx.transaction
        txn.factor_failures += 1
        self._audit(
            ctx.session,
            ctx.actor,
            target,
            "auth.second_factor",
            "failure",
            exc.reason,
            {"transaction": txn.id, "method": method},
        )
        if txn.factor_failures >= MAX_FACTOR_FAILURES:
            txn.state = "failed"

    def _open_session(
        self, ctx: FactorContext, target: Target, method: str, details: dict[str, Any]
    ) -> SessionGrant:
        txn = ctx.transaction
        assert txn.session_wrap is not None
        grant = card_sessions.new_session(
            ctx.session,
            card=ctx.card,
            organisation=ctx.organisation,
            wrap=txn.session_wrap,
            purpose=txn.purpose,
            method=f"{txn.method}+{method}",
            now=ctx.now,
            client_address=ctx.actor.client_address,
            session_id=txn.id,
        )
        ctx.session.delete(txn)
        self._audit(
            ctx.session,
            ctx.actor,
            target,
            "auth.second_factor",
            "success",
            None,
            {"transaction": txn.id, **details},
        )
        self._audit(
            ctx.session,
            ctx.actor,
            target,
            "session.opened",
            "success",
            None,
            {"session": txn.id, "purpose": txn.purpose, "method": f"{txn.method}+{method}"},
        )
        return SessionGrant(
            token=grant.token,
            expires_at=grant.expires_at,
            idle_expires_at=grant.idle_expires_at,
            card_serial=ctx.card.serial,
            organisation=ctx.organisation.code,
        )

    # -- helpers ---------------------------------------------------------------------------

    def _context(
        self, session: Session, actor: Actor, card: Card, org: Organisation, txn: AuthTransaction
    ) -> FactorContext:
        return FactorContext(
            rt=self.rt,
            session=session,
            card=card,
            organisation=org,
            transaction=txn,
            actor=actor,
            now=self.rt.clock(),
        )

    def _target(self, ctx: FactorContext, person: Person | None = None) -> Target:
        """Who the transaction is for; ``person`` where the caller has already read them."""
        person = person or ctx.session.get(Person, ctx.card.person_id)
        assert person is not None
        return Target(
            card=ctx.card,
            person=person,
            organisation=ctx.organisation,
            method=ctx.transaction.method,
        )

    def _audit(
        self,
        session: Session,
        actor: Actor,
        target: Target,
        action: str,
        outcome: str,
        reason: str | None,
        details: dict[str, Any] | None = None,
    ) -> None:
        who = replace(actor, ref=f"holder:{target.person.id}")
        details = {**(details or {}), "client_address": actor.client_address}
        audit.record(
            session,
            self.rt,
            who,
            action=action,
            outcome=outcome,
            reason=reason,
            organisation_id=target.organisation.id,
            person_id=target.person.id,
            card_id=target.card.id,
            details=details,
        )


def purge_transactions(rt: Runtime) -> None:
    with transaction(rt.db) as session:
        for txn in session.scalars(
            select(AuthTransaction).where(AuthTransaction.expires_at <= rt.clock())
        ):
            session.delete(txn)
