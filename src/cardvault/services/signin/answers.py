"""Checking a second factor's answer (DESIGN §3.2, §3.3) and opening the card session it earns.

The engine finds the transaction and reserves the answer's place on the card's counter;
this module asks the plug-ins, audits the verdict, counts a wrong answer (the fifth in a row
locks the card) and, for a right one, turns the transaction into a card session.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.orm import Session

from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.vocabulary import AuthState, SignInRoute
from cardvault.errors import InvalidInput
from cardvault.json_types import JsonInput, JsonObject
from cardvault.services.devices import push
from cardvault.services.signin import factor_lockout
from cardvault.services.signin import refusals as signin_refusals
from cardvault.services.signin import sessions as card_sessions
from cardvault.services.signin.errors import FactorFailed, SecondFactorLocked
from cardvault.services.signin.factor_lockout import Reservation
from cardvault.services.signin.factor_store import factor_context
from cardvault.services.signin.factors import (
    FactorAnswer,
    FactorContext,
    Offer,
    SecondFactor,
    codes,
)
from cardvault.services.signin.identification import Target
from cardvault.services.signin.views import SessionGrant
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import AuthTransaction, Card
from cardvault.store.queries.organisations import AnyOrg, policy_of

MAX_FACTOR_FAILURES = 5
#: what a fifth wrong second factor in a row adds to its refusal
LOCKED_NOW = (
    "That was the fifth wrong second factor in a row, so the card is now locked; its holder "
    "has been emailed a link to unlock it."
)


@dataclass(frozen=True, kw_only=True)
class Verified:
    """A second factor that checked out: its method and what it tells the audit log."""

    method: str
    details: JsonObject


@dataclass(frozen=True, kw_only=True)
class Attempt:
    """An answer being checked, as the engine holds it: the live session and the rows it
    has locked. Plug-ins never see these; they get ``factor``, the narrow context."""

    rt: Runtime
    session: Session
    card: Card
    organisation: AnyOrg
    transaction: AuthTransaction
    actor: Actor
    now: datetime
    factor: FactorContext


def attempt(
    session: Session, rt: Runtime, actor: Actor, card: Card, org: AnyOrg, txn: AuthTransaction
) -> Attempt:
    """The engine's hold on a transaction, with the plug-ins' context made from it."""
    factor = factor_context(session, rt, actor, card, org, txn)
    return Attempt(
        rt=rt,
        session=session,
        card=card,
        organisation=org,
        transaction=txn,
        actor=actor,
        now=factor.now,
        factor=factor,
    )


class AnswerCheck:
    """The installed plug-ins, asked for one answer at a time."""

    def __init__(self, rt: Runtime, factors: Mapping[str, SecondFactor]) -> None:
        self.rt = rt
        self.factors = factors

    def allowed(self, ctx: Attempt) -> list[SecondFactor]:
        """The plug-ins the organisation's policy lets this sign-in offer (``second_factors``,
        issue 21)."""
        policy = policy_of(ctx.organisation)
        return [f for f in self.factors.values() if policy.allows_factor(f.method)]

    def offered(self, ctx: Attempt) -> tuple[Offer, ...]:
        """What the allowed plug-ins offer for this card in this organisation."""
        return tuple(o for f in self.allowed(ctx) if (o := f.offer(ctx.factor)) is not None)

    def code(
        self, ctx: Attempt, target: Target, answer: FactorAnswer, held: Reservation
    ) -> Verified:
        """A one-time code, tried against every code factor offered (one code, one try)."""
        allowed = self.allowed(ctx)
        tried = [
            f
            for m in codes.METHODS
            if (f := self.factors.get(m)) and f in allowed and f.offer(ctx.factor) is not None
        ]
        if not tried:
            raise InvalidInput("This sign-in cannot use a one-time code.", field="code")
        failures: dict[str, FactorFailed] = {}
        for factor in tried:
            try:
                outcome = factor.verify(ctx.factor, replace(answer, method=factor.method))
            except FactorFailed as exc:
                failures[factor.method] = exc
                continue
            held.right(ctx.session)
            return Verified(method=factor.method, details=outcome.details)
        failure = codes.telling(list(failures.values()))
        method = next(m for m, f in failures.items() if f is failure)
        raise self.failed(ctx, target, method, failure, held)

    def answer(
        self,
        ctx: Attempt,
        target: Target,
        answer: FactorAnswer,
        held: Reservation,
        *,
        offered: set[str] | None = None,
    ) -> Verified:
        """``offered``: the methods just offered in this transaction, so as not to ask the
        plug-ins again (a sign-in with the code inline); None asks them."""
        method = answer.method
        factor = self.factors.get(method)
        if factor is None or factor not in self.allowed(ctx) or not _offers(ctx, factor, offered):
            raise InvalidInput(
                f"Second factor {method!r} is not available for this card.", field="method"
            )
        try:
            outcome = factor.verify(ctx.factor, answer)
        except FactorFailed as exc:
            raise self.failed(ctx, target, factor.method, exc, held) from None
        held.right(ctx.session)
        return Verified(method=factor.method, details=outcome.details)

    def failed(
        self,
        ctx: Attempt,
        target: Target,
        method: str,
        exc: FactorFailed,
        held: Reservation,
    ) -> FactorFailed:
        """Audit the refusal; a wrong answer keeps its reservation, and the fifth in a row
        locks the card. Returns the error to raise."""
        txn = ctx.transaction
        txn.factor_failures += 1
        record(
            ctx,
            target,
            AuditAction.AUTH_SECOND_FACTOR,
            "failure",
            exc.reason,
            {"transaction": txn.id, "method": method},
        )
        if txn.factor_failures >= MAX_FACTOR_FAILURES:
            txn.state = AuthState.FAILED
        if not exc.counts:
            return exc
        locked = held.wrong(
            ctx.session,
            self.rt,
            ctx.actor,
            organisation_id=ctx.organisation.id,
            door=factor_lockout.SIGN_IN,
        )
        if not locked:
            return exc
        txn.state = AuthState.FAILED
        return FactorFailed(
            f"{exc.message} {LOCKED_NOW}", reason=exc.reason, code=SecondFactorLocked.code
        )


def _offers(ctx: Attempt, factor: SecondFactor, offered: set[str] | None) -> bool:
    return factor.method in offered if offered is not None else factor.offer(ctx.factor) is not None


def open_session(ctx: Attempt, target: Target, verified: Verified) -> SessionGrant:
    """The transaction becomes a card session (the caller has checked the card is active)."""
    txn = ctx.transaction
    assert txn.session_wrap is not None
    method = f"{txn.method}+{verified.method}"
    grant = card_sessions.new_session(
        ctx.session,
        card=ctx.card,
        organisation=ctx.organisation,
        wrap=txn.session_wrap,
        purpose=txn.purpose,
        method=method,
        now=ctx.now,
        client_address=ctx.actor.client_address,
        session_id=txn.id,
        master=ctx.rt.master_key,
    )
    if txn in ctx.session:  # not a sign-in's that was never written (its code came inline)
        # a push still waiting (the holder typed a code, or used a key) is closed, audited
        holder = ctx.actor.as_holder(ctx.card.person_id)
        push.cancel_for_transaction(ctx.session, ctx.rt, txn, holder)
        ctx.session.delete(txn)
    record(
        ctx,
        target,
        AuditAction.AUTH_SECOND_FACTOR,
        "success",
        None,
        {"transaction": txn.id, **verified.details},
    )
    record(
        ctx,
        target,
        AuditAction.SESSION_OPENED,
        "success",
        None,
        {"session": txn.id, "purpose": txn.purpose, "method": method},
    )
    return SessionGrant(
        token=grant.token,
        expires_at=grant.expires_at,
        idle_expires_at=grant.idle_expires_at,
        card_serial=ctx.card.serial,
        organisation=ctx.organisation.code,
        session_id=txn.id,
        channel_key=grant.channel_key,
    )


def target_of(ctx: Attempt) -> Target:
    """Who the transaction is for (the card's holder: no need to read the person's row)."""
    return Target(
        card=ctx.card,
        person_id=ctx.card.person_id,
        organisation=ctx.organisation,
        route=SignInRoute(ctx.transaction.method),
    )


def record(
    ctx: Attempt,
    target: Target,
    action: AuditAction,
    outcome: str,
    reason: str | None,
    details: Mapping[str, JsonInput] | None = None,
) -> None:
    """One audit event of this sign-in, by the context's actor."""
    signin_refusals.record_for(
        ctx.session, ctx.rt, ctx.actor, target, action, outcome, reason, details
    )


#: one audit event about the target's card, in its organisation's chain (the engine's name
#: for it: the sign-in's refusals and its answers write the same event)
audit = signin_refusals.record_for
