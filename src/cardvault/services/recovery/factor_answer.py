"""Step 2 of a reset (DESIGN §3.3): the second factor, checked by the sign-in's plug-ins.

Which plug-ins, in which organisations, is :mod:`~cardvault.services.recovery.factors`. A
wrong factor costs a try on the link and on the card like a wrong answer, and counts on
the card's second-factor counter; a push the phone has not answered yet costs nothing.
The other steps are in :mod:`~cardvault.services.recovery.reset`.
"""

from __future__ import annotations

from dataclasses import replace

from cardvault.domain.audit_actions import AuditAction
from cardvault.errors import InvalidInput
from cardvault.services.audit import trail as audit
from cardvault.services.devices import push
from cardvault.services.devices.errors import PushNotAnswered
from cardvault.services.recovery import factors as recovery_factors
from cardvault.services.recovery.errors import RecoveryStepInvalid, WrongAnswers
from cardvault.services.recovery.limits import LINK_MAX_FAILURES, failed, release, reserve
from cardvault.services.recovery.reset import (
    LOCKED_DURING_RESET,
    STEP_FACTOR,
    STEP_PASSCODE,
    Progress,
    Step,
    factor_step,
)
from cardvault.services.signin import factor_lockout
from cardvault.services.signin.errors import FactorFailed
from cardvault.services.signin.factors import FactorAnswer, SecondFactor
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import (
    AuthTransaction,
    Card,
    Organisation,
)


def second_factor(
    rt: Runtime,
    actor: Actor,
    token: str,
    transaction_id: str,
    key: bytes,
    response: FactorAnswer,
) -> Progress:
    """Check the second factor with the plug-ins the sign-in uses; a wrong one costs a try."""
    step = factor_step(rt, token, transaction_id, key)
    method = response.method
    candidates = recovery_factors.candidates(step.txn, method)
    if not candidates:
        raise InvalidInput(f"Second factor {method!r} is not set up for this card.", field="method")
    if recovery_factors.awaiting_phone(rt, step.txn.id, response):
        raise PushNotAnswered()
    reserved = reserve(rt, step.link_id, step.card.id)
    with factor_lockout.reserved(
        rt, actor, step.card.id, organisation_id=step.card.organisation_id, for_reset=True
    ) as held:
        try:
            outcome = _verify_candidates(rt, actor, step, key, candidates, response, held)
        except Exception:
            # nothing was found wrong (the step moved on, a malformed answer, a failed write):
            # the reserved try goes back, only a wrong second factor costs one
            with transaction(rt.db) as session:
                release(session, step.link_id, step.card.id)
            raise
        if isinstance(outcome, Progress):
            held.committed = True
            return outcome
        failure = recovery_factors.telling(outcome)
        error = failed(
            rt,
            actor,
            step.link_id,
            step.card,
            reserved,
            AuditAction.RECOVERY_SECOND_FACTOR,
            failure.reason,
            held if failure.counts else None,
        )
        held.committed = True
    if held.locked_now:
        raise FactorFailed(
            f"{failure.message} {LOCKED_DURING_RESET}", reason=failure.reason, code=failure.code
        )
    if isinstance(error, WrongAnswers):
        left = LINK_MAX_FAILURES - reserved
        raise FactorFailed(
            f"{failure.message} {left} {'try' if left == 1 else 'tries'} left with this link.",
            reason=failure.reason,
            code=failure.code,
        )
    raise error


def _verify_candidates(
    rt: Runtime,
    actor: Actor,
    step: Step,
    key: bytes,
    candidates: list[tuple[SecondFactor, str]],
    response: FactorAnswer,
    held: factor_lockout.Reservation,
) -> Progress | list[FactorFailed]:
    """The next step once one candidate accepts the answer, else every candidate's refusal."""
    failures: list[FactorFailed] = []
    with transaction(rt.db) as session:
        card = session.get(Card, step.card.id)
        txn = session.get(AuthTransaction, step.txn.id, with_for_update=True)
        if card is None or txn is None or txn.state != STEP_FACTOR:
            raise RecoveryStepInvalid()
        for factor, org_id in candidates:
            org = session.get(Organisation, org_id)
            assert org is not None
            ctx = recovery_factors.context(session, rt, actor, card, org, txn)
            try:
                outcome = factor.verify(ctx, replace(response, method=factor.method))
            except FactorFailed as exc:
                failures.append(exc)
                continue
            release(session, step.link_id, card.id)
            held.right(session)
            push.cancel_for_transaction(session, rt, txn, actor)  # a push still waiting
            txn.state = STEP_PASSCODE
            details = {"link": step.link_id, **dict(outcome.details)}
            audit.record_for_card(
                session, rt, actor, card, action=AuditAction.RECOVERY_SECOND_FACTOR, details=details
            )
            return Progress(transaction_id=txn.id, key=key, step=STEP_PASSCODE, second_factors=())
    return failures
