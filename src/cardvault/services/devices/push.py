"""Push challenges with number matching (DESIGN §3.3; docs/protocols/device.md §5).

After the passcode, the PC asks for a push: the service makes a challenge for the card's
paired devices with a two-digit number that only the PC shows. The phone shows where the
request comes from; the holder types the number and approves, denies, or answers "this
wasn't me". The answer is signed by the device key over the challenge id, the number and
the decision. A wrong number refuses the challenge like a denial, so approving blindly
does not work. A challenge expires (default 2 minutes) and is used once: the engine's
``authenticator`` factor turns an approved challenge into ``used`` with a conditional
UPDATE when the sign-in completes. The self-service portal asks the same way while a holder
resets their passcode (``start_for_reset``; the browser shows the number).
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cardvault.crypto import device as dcrypto
from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.push_policy import (
    Decision,
    PastPrompt,
    PushLimits,
    PushStatus,
    new_number,
    next_allowed,
)
from cardvault.domain.vocabulary import AuthState
from cardvault.errors import InvalidInput, NotFound
from cardvault.services.audit import trail as audit
from cardvault.services.devices.channel import (
    active_devices,
    challenge_topic,
    channel,
    device_topic,
)
from cardvault.services.devices.errors import (
    ChallengeClosed,
    NoPairedDevice,
    PushRateLimited,
    TransactionInvalid,
    WrongNumber,
)
from cardvault.services.devices.requests import DeviceCaller, as_actor
from cardvault.services.networks import allow_list as network
from cardvault.services.notifications import outbox as notifications
from cardvault.services.signin import factor_lockout
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import AuthTransaction, Card, Device, Organisation, PushChallenge
from cardvault.store.types import new_id

_NUMBER = re.compile(r"^[0-9]{2}$")
#: the transactions the PC's push API serves; a passcode reset asks through start_for_reset
SIGN_IN_PURPOSES = ("holder", "ra")
RESET_PURPOSE = "recovery"


@dataclass(frozen=True, kw_only=True)
class PushStarted:
    challenge_id: str
    number: int
    expires_at: datetime
    devices: int
    connected: int


def limits(rt: Runtime) -> PushLimits:
    return PushLimits(max_pending=rt.settings.push_max_pending)


# --- the PC's side ----------------------------------------------------------------------------


def start(rt: Runtime, actor: Actor, transaction_id: str) -> PushStarted:
    """A new challenge for the sign-in ``transaction_id`` (and the PC's number)."""
    with transaction(rt.db) as session:
        txn = _live_transaction(session, rt, transaction_id, SIGN_IN_PURPOSES)
        card = session.get(Card, txn.card_id)
        org = session.get(Organisation, txn.organisation_id)
        assert card is not None and org is not None
        network.check_client(org, actor.client_address)
        made = _create(session, rt, actor, txn, card, org)
    return _announce(rt, made)


def start_for_reset(
    rt: Runtime, actor: Actor, transaction_id: str, organisation_id: str
) -> PushStarted:
    """A new challenge for a passcode reset in the portal (``services.recovery_prompts``
    has checked the link and the browser's key): to the phones paired in
    ``organisation_id``, one of the holder's organisations, from any network, as the rest
    of the portal works."""
    with transaction(rt.db) as session:
        txn = _live_transaction(session, rt, transaction_id, (RESET_PURPOSE,))
        card = session.get(Card, txn.card_id)
        org = session.get(Organisation, organisation_id)
        assert card is not None and org is not None
        made = _create(session, rt, actor, txn, card, org)
    return _announce(rt, made)


@dataclass(frozen=True, kw_only=True)
class _Made:
    challenge: PushChallenge
    view: dict[str, Any]
    device_ids: list[str]
    cancelled: list[str]


def _create(
    session: Session,
    rt: Runtime,
    actor: Actor,
    txn: AuthTransaction,
    card: Card,
    org: Organisation,
) -> _Made:
    now = rt.clock()
    devices = active_devices(session, card.id, org.id)
    if not devices:
        raise NoPairedDevice(
            "No phone is paired with this card.", remedy="Use a one-time code instead."
        )
    _check_rate(session, rt, card.id, now)
    cancelled = _cancel_pending(session, txn.id)
    challenge = PushChallenge(
        id=new_id(),
        transaction_id=txn.id,
        card_id=card.id,
        number=new_number(),
        status=PushStatus.PENDING,
        context=_context(txn, org, now),
        created_at=now,
        expires_at=now + timedelta(seconds=rt.settings.push_challenge_seconds),
    )
    session.add(challenge)
    _audit(session, rt, actor, card, org, AuditAction.PUSH_REQUESTED, "success", None, challenge)
    return _Made(
        challenge=challenge,
        view=device_view(challenge),
        device_ids=[d.id for d in devices],
        cancelled=cancelled,
    )


def _announce(rt: Runtime, made: _Made) -> PushStarted:
    """After the commit: tell the phones, and the PC what to show."""
    ch = channel(rt)
    for old in made.cancelled:
        _publish_closed(rt, made.device_ids, old, PushStatus.CANCELLED)
    for device_id in made.device_ids:
        ch.publish(device_topic(device_id), {"type": "challenge", "challenge": made.view})
    return PushStarted(
        challenge_id=made.challenge.id,
        number=made.challenge.number,
        expires_at=made.challenge.expires_at,
        devices=len(made.device_ids),
        connected=len(ch.present(made.device_ids)),
    )


def _live_transaction(
    session: Session, rt: Runtime, transaction_id: str, purposes: tuple[str, ...]
) -> AuthTransaction:
    txn = session.get(AuthTransaction, transaction_id, with_for_update=True)
    if (
        txn is None
        or txn.purpose not in purposes
        or txn.state != AuthState.SECOND_FACTOR
        or rt.clock() >= txn.expires_at
    ):
        raise TransactionInvalid("This sign-in has expired or is unknown; start again.")
    return txn


def _context(txn: AuthTransaction, org: Organisation, now: datetime) -> dict[str, Any]:
    return {
        "client_name": txn.client_name,
        "client_address": txn.client_address,
        "organisation_id": org.id,
        "organisation": org.code,
        "organisation_name": org.name,
        "purpose": txn.purpose,
        "requested_at": now.isoformat(),
    }


def _check_rate(session: Session, rt: Runtime, card_id: str, now: datetime) -> None:
    lim = limits(rt)
    rows = session.scalars(
        select(PushChallenge).where(
            PushChallenge.card_id == card_id, PushChallenge.created_at >= now - lim.window
        )
    )
    history = [
        PastPrompt(
            created_at=r.created_at,
            expires_at=r.expires_at,
            status=PushStatus(r.status),
            answered_at=r.answered_at,
        )
        for r in rows
    ]
    when = next_allowed(history, now=now, limits=lim)
    if when is not None:
        wait = max(1, int((when - now).total_seconds() + 0.999))
        raise PushRateLimited(
            f"Too many sign-in requests to this card's phone; the next one can be sent in "
            f"{wait} seconds.",
            remedy="Use the one-time code from the app instead, or wait.",
            retry_after=wait,
        )


def _cancel_pending(session: Session, transaction_id: str) -> list[str]:
    ids = list(
        session.scalars(
            update(PushChallenge)
            .where(
                PushChallenge.transaction_id == transaction_id,
                PushChallenge.status == PushStatus.PENDING,
            )
            .values(status=PushStatus.CANCELLED)
            .returning(PushChallenge.id)
        )
    )
    return ids


def cancel_for_transaction(session: Session, rt: Runtime, txn: AuthTransaction) -> None:
    """The sign-in finished another way (a one-time code): close its open prompts."""
    ids = _cancel_pending(session, txn.id)
    if ids and txn.card_id and txn.organisation_id:
        devices = [d.id for d in active_devices(session, txn.card_id, txn.organisation_id)]
        for challenge_id in ids:
            _publish_closed(rt, devices, challenge_id, PushStatus.CANCELLED)


def status(rt: Runtime, challenge_id: str, transaction_id: str) -> PushStatus:
    """The challenge's state for the PC that asked for it (marks it expired when it is)."""
    with transaction(rt.db) as session:
        ch = session.get(PushChallenge, challenge_id)
        if ch is None or ch.transaction_id not in (transaction_id, None):
            raise NotFound("There is no such sign-in request.")
        if ch.transaction_id is None and ch.status == PushStatus.PENDING:
            ch.status = PushStatus.CANCELLED
        if ch.status == PushStatus.PENDING and rt.clock() >= ch.expires_at:
            ch.status = PushStatus.EXPIRED
            _audit_expired(session, rt, ch)
        return PushStatus(ch.status)


@dataclass(frozen=True, kw_only=True)
class PushPrompt:
    """What the PC shows while it waits: the number to type on the phone, and until when."""

    challenge_id: str
    number: int
    expires_at: datetime
    status: PushStatus


def prompt(rt: Runtime, challenge_id: str, transaction_id: str) -> PushPrompt:
    """The challenge once more for the PC that asked for it (its waiting page reloaded)."""
    state = status(rt, challenge_id, transaction_id)
    with rt.db() as session:
        ch = session.get(PushChallenge, challenge_id)
        if ch is None or ch.transaction_id != transaction_id:
            raise NotFound("There is no such sign-in request.")
        return PushPrompt(
            challenge_id=ch.id, number=ch.number, expires_at=ch.expires_at, status=state
        )


def _audit_expired(session: Session, rt: Runtime, ch: PushChallenge) -> None:
    card = session.get(Card, ch.card_id)
    org = session.get(Organisation, ch.context.get("organisation_id"))
    if card is not None and org is not None:
        _audit(
            session,
            rt,
            Actor.system(),
            card,
            org,
            AuditAction.PUSH_ANSWERED,
            "failure",
            "push expired",
            ch,
        )


# --- the phone's side -------------------------------------------------------------------------


def device_view(ch: PushChallenge) -> dict[str, Any]:
    """What the phone shows: where the request comes from, never the number."""
    ctx = ch.context
    return {
        "id": ch.id,
        "created_at": ch.created_at.isoformat(),
        "expires_at": ch.expires_at.isoformat(),
        "client_name": ctx.get("client_name"),
        "client_address": ctx.get("client_address"),
        "organisation": ctx.get("organisation"),
        "organisation_name": ctx.get("organisation_name"),
        "number_digits": 2,
    }


def pending_for_device(rt: Runtime, caller: DeviceCaller) -> list[dict[str, Any]]:
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
        return [
            device_view(r)
            for r in rows
            if r.context.get("organisation_id") == caller.organisation_id
        ]


@dataclass(frozen=True, kw_only=True)
class Answer:
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
            or ch.context.get("organisation_id") != caller.organisation_id
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
            device_ids = [d.id for d in active_devices(session, card.id, org.id)]
    if held is not None:
        held.committed = True
    if closed is not None:
        raise ChallengeClosed(_closed_message(closed), push_status=closed.value)
    channel(rt).publish(challenge_topic(ch.id), {"type": "answered", "status": result.value})
    _publish_closed(rt, [d for d in device_ids if d != caller.device_id], ch.id, result)
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
        _audit(
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
    _audit(session, rt, actor, card, org, AuditAction.PUSH_ANSWERED, outcome, _REASONS[result], ch)
    if result is PushStatus.NOT_ME:
        alerted = len(notifications.not_me(session, rt, card, org, caller.name))
        _audit(
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


def _publish_closed(
    rt: Runtime, device_ids: list[str], challenge_id: str, state: PushStatus
) -> None:
    ch = channel(rt)
    for device_id in device_ids:
        ch.publish(
            device_topic(device_id),
            {"type": "closed", "challenge_id": challenge_id, "status": state.value},
        )


def _audit(
    session: Session,
    rt: Runtime,
    actor: Actor,
    card: Card,
    org: Organisation,
    action: AuditAction,
    outcome: str,
    reason: str | None,
    ch: PushChallenge,
    extra: dict[str, Any] | None = None,
) -> None:
    audit.record_for_card(
        session,
        rt,
        actor,
        card,
        action=action,
        outcome=outcome,
        reason=reason,
        organisation_id=org.id,
        details={
            "challenge": ch.id,
            "transaction": ch.transaction_id,
            "device": ch.device_id,
            "client_name": ch.context.get("client_name"),
            "client_address": ch.context.get("client_address"),
            **(extra or {}),
        },
    )
