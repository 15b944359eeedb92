"""Push challenges with number matching (DESIGN §3.3; docs/protocols/device.md §5).

After the passcode, the PC asks for a push: the service makes a challenge for the card's
paired devices with a two-digit number that only the PC shows. The phone shows where the
request comes from; the holder types the number and approves, denies, or answers "this
wasn't me". The answer is signed by the device key over the challenge id, the number and
the decision. A wrong number refuses the challenge like a denial, so approving blindly
does not work. A challenge expires (default 2 minutes) and is used once: the engine's
``authenticator`` factor turns an approved challenge into ``used`` with a conditional
UPDATE when the sign-in completes. The self-service portal asks the same way while a holder
resets their passcode (``start_for_reset``; the browser shows the number): such a challenge
may go to phones paired in several of the holder's organisations (``organisation_ids`` in
its context), and the phone shows it as a passcode reset, not a sign-in (issue 21).

This module is the PC's side; the phone's (its list of open challenges, its answer) is
``push_answers``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.push_policy import (
    PastPrompt,
    PushLimits,
    PushRequest,
    PushStatus,
    new_number,
    next_allowed,
)
from cardvault.domain.vocabulary import AuthState
from cardvault.errors import NotFound
from cardvault.json_types import JsonObject
from cardvault.services.audit import trail as audit
from cardvault.services.devices.channel import (
    active_devices,
    channel,
    device_topic,
)
from cardvault.services.devices.errors import (
    NoPairedDevice,
    PushRateLimited,
    TransactionInvalid,
)
from cardvault.services.networks import allow_list as network
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import AuthTransaction, Card, Organisation, PushChallenge
from cardvault.store.types import new_id

#: the transactions the PC's push API serves; a passcode reset asks through start_for_reset
SIGN_IN_PURPOSES = ("holder", "ra")
RESET_PURPOSE = "recovery"


@dataclass(frozen=True, kw_only=True)
class PushStarted:
    """What starting a push gives the PC: the challenge, the number to show, how many phones."""

    challenge_id: str
    number: int
    expires_at: datetime
    devices: int
    connected: int


def limits(rt: Runtime) -> PushLimits:
    """The push limits this service runs with (pending prompts per card)."""
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
    rt: Runtime, actor: Actor, transaction_id: str, organisation_ids: Sequence[str]
) -> PushStarted:
    """A new challenge for a passcode reset in the portal (``services.recovery_prompts``
    has checked the link and the browser's key, and chosen the organisations): to the
    phones paired in ``organisation_ids``, of the holder's organisations, from any network,
    as the rest of the portal works."""
    with transaction(rt.db) as session:
        txn = _live_transaction(session, rt, transaction_id, (RESET_PURPOSE,))
        card = session.get(Card, txn.card_id)
        orgs = [session.get(Organisation, org_id) for org_id in organisation_ids]
        assert card is not None and orgs and all(orgs)
        made = _create(session, rt, actor, txn, card, *[o for o in orgs if o is not None])
    return _announce(rt, made)


@dataclass(frozen=True, kw_only=True)
class _Made:
    challenge: PushChallenge
    view: JsonObject
    device_ids: list[str]
    cancelled: list[str]


def _create(
    session: Session,
    rt: Runtime,
    actor: Actor,
    txn: AuthTransaction,
    card: Card,
    org: Organisation,
    *more: Organisation,
) -> _Made:
    """A challenge for the phones paired in ``org`` (and, for a reset, in ``more``)."""
    now = rt.clock()
    devices = [d for o in (org, *more) for d in active_devices(session, card.id, o.id)]
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
        context={**_context(txn, org, now), "organisation_ids": [o.id for o in (org, *more)]},
        created_at=now,
        expires_at=now + timedelta(seconds=rt.settings.push_challenge_seconds),
    )
    session.add(challenge)
    record(session, rt, actor, card, org, AuditAction.PUSH_REQUESTED, "success", None, challenge)
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
        publish_closed(rt, made.device_ids, old, PushStatus.CANCELLED)
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


def _context(txn: AuthTransaction, org: Organisation, now: datetime) -> JsonObject:
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


def cancel_for_transaction(
    session: Session, rt: Runtime, txn: AuthTransaction, actor: Actor | None = None
) -> None:
    """The sign-in (or reset) finished another way, a one-time code or a security key:
    close its open prompts, audited, and tell the phones it was answered elsewhere."""
    ids = _cancel_pending(session, txn.id)
    card = session.get(Card, txn.card_id) if ids and txn.card_id else None
    for challenge_id in ids if card is not None else []:
        ch = session.get(PushChallenge, challenge_id)
        assert ch is not None and card is not None
        orgs = [o for i in organisations_of(ch) if (o := session.get(Organisation, i))]
        devices = [d.id for o in orgs for d in active_devices(session, card.id, o.id)]
        if orgs:
            record(
                session,
                rt,
                actor or Actor.system(),
                card,
                orgs[0],
                AuditAction.PUSH_CLOSED,
                "success",
                "answered another way",
                ch,
            )
        publish_closed(rt, devices, challenge_id, PushStatus.CANCELLED, elsewhere=True)


def organisations_of(ch: PushChallenge) -> list[str]:
    """The organisations whose phones a challenge went to (one, except for some resets)."""
    ids = ch.context.get("organisation_ids")
    if isinstance(ids, list) and ids:
        return [str(i) for i in ids]
    org_id = ch.context.get("organisation_id")
    return [str(org_id)] if org_id else []


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
        record(
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


def device_view(ch: PushChallenge) -> JsonObject:
    """What the phone shows: where the request comes from, never the number."""
    ctx = ch.context
    request = (
        PushRequest.PASSCODE_RESET if ctx.get("purpose") == RESET_PURPOSE else PushRequest.SIGN_IN
    )
    return {
        "id": ch.id,
        "request": request.value,
        "title": request.heading,
        "created_at": ch.created_at.isoformat(),
        "expires_at": ch.expires_at.isoformat(),
        "client_name": ctx.get("client_name"),
        "client_address": ctx.get("client_address"),
        "organisation": ctx.get("organisation"),
        "organisation_name": ctx.get("organisation_name"),
        "number_digits": 2,
    }


def publish_closed(
    rt: Runtime,
    device_ids: list[str],
    challenge_id: str,
    state: PushStatus,
    *,
    elsewhere: bool = False,
) -> None:
    """Tell the phones a challenge is no longer waiting (they take it off the screen).
    ``elsewhere``: answered on another device (another phone, or a code or a key at the
    computer), which the phone says when it dismisses the request."""
    ch = channel(rt)
    event: JsonObject = {"type": "closed", "challenge_id": challenge_id, "status": state.value}
    if elsewhere:
        event["answered_elsewhere"] = True
    for device_id in device_ids:
        ch.publish(device_topic(device_id), event)


def record(
    session: Session,
    rt: Runtime,
    actor: Actor,
    card: Card,
    org: Organisation,
    action: AuditAction,
    outcome: str,
    reason: str | None,
    ch: PushChallenge,
    extra: JsonObject | None = None,
) -> None:
    """One audit event about a challenge, in the card's organisation's chain."""
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
