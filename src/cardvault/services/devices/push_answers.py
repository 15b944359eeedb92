"""Answers to push challenges: the phone's side (DESIGN §3.3; docs/protocols/device.md §5).

The phone lists the challenges open for its card and answers one, signed by the device key
over the challenge id, the number and the decision. A wrong number refuses the challenge
like a denial and counts on the card's second-factor counter; "this wasn't me" alerts the
organisation's RAs. The PC's side (making a challenge, asking its state) is ``push``.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardvault.crypto import device as dcrypto
from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.push_policy import Decision, PushStatus
from cardvault.errors import InvalidInput, NotFound
from cardvault.json_types import JsonObject
from cardvault.services.devices.channel import active_devices, challenge_topic, channel
from cardvault.services.devices.errors import ChallengeClosed, WrongNumber
from cardvault.services.devices.push import (
    RESET_PURPOSE,
    device_view,
    organisations_of,
    publish_closed,
    record,
)
from cardvault.services.devices.requests import DeviceCaller, as_actor
from cardvault.services.notifications import outbox as notifications
from cardvault.services.signin import factor_lockout
from cardvault.services.system import metrics
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import Card, Device, Organisation, PushChallenge

_NUMBER = re.compile(r"^[0-9]{2}$")


def pending_for_device(rt: Runtime, caller: DeviceCaller) -> list[JsonObject]:
    """Open challenges for the device's card in its organisation (e.g. on reconnect)."""
    now = rt.clock()
    with rt.db() as session:
        rows = session.scalars(
            select(PushChallenge)
            .where(
                PushChallenge.card_id == caller.card_id,
                PushChallenge.status == PushStatus.PENDING,
                PushChallenge.expires_at > now,
                PushChallenge.transaction_id.is_not(None),
            )
            .order_by(PushChallenge.created_at)
        )
        return [device_view(r) for r in rows if caller.organisation_id in organisations_of(r)]


@dataclass(frozen=True, kw_only=True)
class Answer:
    """A phone's signed answer to a push: the number chosen, approve or deny, the signature."""

    challenge_id: str
    number: str
    decision: str
    signature: str  # base64url DER over answer_signing_input


def _check_answer(caller: DeviceCaller, answer: Answer) -> Decision:
    try:
        decision = Decision(answer.decision)
    except ValueError:
        raise InvalidInput("decision is approve, deny or not_me.", field="decision") from None
    if decision is Decision.APPROVE and not _NUMBER.match(answer.number or ""):
        raise InvalidInput("Type the two-digit number shown on your computer.", field="number")
    if answer.number and not _NUMBER.match(answer.number):
        raise InvalidInput("number is two digits, or empty.", field="number")
    message = dcrypto.answer_signing_input(
        challenge_id=answer.challenge_id, number=answer.number or "", decision=decision.value
    )
    dcrypto.verify_device_signature(
        caller.public_key_der, message, dcrypto.unb64url(answer.signature, "signature")
    )
    return decision


def answer(rt: Runtime, caller: DeviceCaller, answer: Answer) -> PushStatus:
    """Record the holder's answer; returns the challenge's new status.

    An approval's number is checked like any second factor: its place on the card's counter
    is reserved first, and a wrong number keeps it (``factor_lockout``)."""
    decision = _check_answer(caller, answer)
    actor = as_actor(caller)
    if decision is not Decision.APPROVE:
        return _answer(rt, caller, actor, answer, decision, None)
    with factor_lockout.reserved(
        rt,
        actor,
        caller.card_id,
        organisation_id=caller.organisation_id,
        for_reset=_for_reset(rt, answer.challenge_id),
    ) as held:
        return _answer(rt, caller, actor, answer, decision, held)


def _for_reset(rt: Runtime, challenge_id: str) -> bool:
    """Whether the challenge asks for a passcode reset in the portal (its own limits gate it)."""
    with rt.db() as session:
        ch = session.get(PushChallenge, challenge_id)
        return ch is not None and ch.context.get("purpose") == RESET_PURPOSE


def _answer(
    rt: Runtime,
    caller: DeviceCaller,
    actor: Actor,
    answer: Answer,
    decision: Decision,
    held: factor_lockout.Reservation | None,
) -> PushStatus:
    closed: PushStatus | None = None
    locked = False
    with transaction(rt.db) as session:
        if held is not None:  # the card's row first, as every transaction that may lock it
            session.get(Card, caller.card_id, with_for_update=True)
        ch = session.get(PushChallenge, answer.challenge_id, with_for_update=True)
        if (
            ch is None
            or ch.card_id != caller.card_id
            or caller.organisation_id not in organisations_of(ch)
        ):
            raise NotFound("There is no such sign-in request.")
        card = session.get(Card, ch.card_id)
        org = session.get(Organisation, caller.organisation_id)
        assert card is not None and org is not None
        closed = _closed(session, rt, ch, actor, card, org)
        if closed is None:
            result = _decide(ch, decision, answer.number)
            _record_answer(session, rt, actor, caller, ch, card, org, result, answer)
            if result is PushStatus.WRONG_NUMBER and held is not None:
                locked = held.wrong(session, rt, actor, organisation_id=org.id, door=_door(ch))
            device_ids = [
                d.id
                for org_id in organisations_of(ch)
                for d in active_devices(session, card.id, org_id)
            ]
    if held is not None:
        held.committed = True
    if closed is not None:
        raise ChallengeClosed(_closed_message(closed), push_status=closed.value)
    channel(rt).publish(challenge_topic(ch.id), {"type": "answered", "status": result.value})
    others = [d for d in device_ids if d != caller.device_id]
    publish_closed(rt, others, ch.id, result, elsewhere=True)
    if result is PushStatus.WRONG_NUMBER:
        raise WrongNumber(
            "That is not the number shown on the computer, so the sign-in was refused."
            + (" After five wrong answers in a row the card is now locked." if locked else ""),
            remedy="If you are signing in, start again and type the number you see.",
        )
    return result


def _door(ch: PushChallenge) -> str:
    reset = ch.context.get("purpose") == RESET_PURPOSE
    return factor_lockout.RESET if reset else factor_lockout.SIGN_IN


def _closed(
    session: Session, rt: Runtime, ch: PushChallenge, actor: Actor, card: Card, org: Organisation
) -> PushStatus | None:
    if ch.transaction_id is None and ch.status == PushStatus.PENDING:
        ch.status = PushStatus.CANCELLED
    if ch.status == PushStatus.PENDING and rt.clock() >= ch.expires_at:
        ch.status = PushStatus.EXPIRED
        record(
            session, rt, actor, card, org, AuditAction.PUSH_ANSWERED, "failure", "push expired", ch
        )
    return None if ch.status == PushStatus.PENDING else ch.status


def _closed_message(state: PushStatus) -> str:
    return {
        PushStatus.EXPIRED: "This sign-in request has expired.",
        PushStatus.CANCELLED: "This sign-in request is no longer waiting for an answer.",
    }.get(state, "This sign-in request has already been answered.")


def _decide(ch: PushChallenge, decision: Decision, number: str) -> PushStatus:
    if decision is Decision.DENY:
        return PushStatus.DENIED
    if decision is Decision.NOT_ME:
        return PushStatus.NOT_ME
    right = hmac.compare_digest(f"{ch.number:02d}".encode(), number.encode())
    return PushStatus.APPROVED if right else PushStatus.WRONG_NUMBER


_REASONS = {
    PushStatus.APPROVED: None,
    PushStatus.DENIED: "push denied",
    PushStatus.NOT_ME: "push denied: this wasn't me",
    PushStatus.WRONG_NUMBER: "push refused: wrong number",
}


def _record_answer(
    session: Session,
    rt: Runtime,
    actor: Actor,
    caller: DeviceCaller,
    ch: PushChallenge,
    card: Card,
    org: Organisation,
    result: PushStatus,
    ans: Answer,
) -> None:
    ch.status = result
    ch.device_id = caller.device_id
    ch.answered_at = rt.clock()
    ch.context = {
        **ch.context,
        "answer": {"decision": ans.decision, "number": ans.number, "signature": ans.signature},
    }
    outcome = "success" if result is PushStatus.APPROVED else "failure"
    record(session, rt, actor, card, org, AuditAction.PUSH_ANSWERED, outcome, _REASONS[result], ch)
    waited = max(0.0, (ch.answered_at - ch.created_at).total_seconds())
    metrics.count_after_commit(session, rt, lambda m: m.push_latency.observe(waited))
    if result is PushStatus.NOT_ME:
        alerted = len(notifications.not_me(session, rt, card, org, caller.name))
        record(
            session,
            rt,
            actor,
            card,
            org,
            AuditAction.PUSH_NOT_ME_REPORTED,
            "success",
            None,
            ch,
            {"ra_alerted": alerted},
        )
    device = session.get(Device, caller.device_id)
    if device is not None:
        device.last_seen_at = rt.clock()
