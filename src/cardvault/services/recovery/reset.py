"""Self-service recovery through a reset link (DESIGN §3.3).

Three steps, each a call from the portal:

1. :func:`answer` — two of the three security answers (or the recovery code) open a
   recovery slot. Every try is reserved on the link *and* on the card before the KDF runs,
   so neither a link nor a card allows more than its share of wrong guesses, however many
   arrive at once. The DEK is at once re-wrapped under a fresh key K that only the holder's
   browser keeps (like a card session's SK); the service keeps ``wrap(DEK, K)`` in a
   transaction row of purpose ``recovery``.
2. ``factor_answer.second_factor`` — where the holder has a bound second factor and the
   policy asks for it (the default), a plug-in of :mod:`cardvault.services.signin.factors`
   checks it: a one-time code (an authenticator app, or the paired phone's own), an
   approved push, or a security key's assertion (which plug-ins, in which organisations:
   :mod:`~cardvault.services.recovery.factors`; starting a push or a key's request:
   :mod:`~cardvault.services.recovery.prompts`). A wrong factor costs a try like a wrong
   answer; a push the phone has not answered yet costs nothing.
3. ``new_passcode.set_passcode`` — a new strong passcode becomes the passcode slot of the
   same DEK. The link is consumed by one conditional UPDATE in the same transaction, so of
   any number of concurrent completions exactly one changes the card. The lockout count and
   recovery count reset, every session and link of the card ends, the holder is emailed.

This module is step 1 and what the steps share (the step's transaction, held by this
browser); steps 2 and 3 are ``factor_answer`` and ``new_passcode``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardvault.crypto.aead import wipe
from cardvault.crypto.keyslots import (
    RECOVERY_CODE_SLOT,
    SlotNotFound,
    WrongSecret,
    open_recovery_code_slot,
    open_recovery_slots,
    unwrap_session,
)
from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.vocabulary import AuthState
from cardvault.errors import InvalidInput
from cardvault.services.audit import trail as audit
from cardvault.services.cards.enrolment import MAX_ANSWER
from cardvault.services.cards.sealing import hand_over, open_record
from cardvault.services.notifications import outbox as notifications
from cardvault.services.recovery import factors as recovery_factors
from cardvault.services.recovery import links
from cardvault.services.recovery.errors import (
    RecoveryNotAllowed,
    RecoveryStepInvalid,
)
from cardvault.services.recovery.limits import (
    CARD_MAX_FAILURES,
    LINK_MAX_FAILURES,
    blocked,
    contact,
    failed,
    release,
    reserve,
)
from cardvault.services.recovery.reset_links import may_self_unlock
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import (
    AuthTransaction,
    Card,
    Link,
    Organisation,
    Person,
    SecurityQuestion,
)
from cardvault.store.queries.organisations import policy_of
from cardvault.store.types import new_id

__all__ = [
    "CARD_MAX_FAILURES",
    "LINK_MAX_FAILURES",
    "answer",
    "current_step",
    "factor_step",
    "open_reset",
]
PURPOSE = "recovery"
STEP_FACTOR = AuthState.SECOND_FACTOR
STEP_PASSCODE = AuthState.NEW_PASSCODE
#: what the wrong second factor that locks a card during its reset adds to the refusal
LOCKED_DURING_RESET = (
    "That was the fifth wrong second factor in a row, so the card is now locked and this link "
    "no longer works; we have emailed the holder a new one."
)


@dataclass(frozen=True, kw_only=True)
class Question:
    position: int
    text: str


@dataclass(frozen=True, kw_only=True)
class ResetPage:
    """What the portal shows when a reset link is opened (no state changes)."""

    holder_name: str
    questions: tuple[Question, ...]
    has_recovery_code: bool
    expires_at: datetime
    #: less than a minute left (``links.closing``): the page says so, to the second
    closing: bool
    tries_left: int


@dataclass(frozen=True, kw_only=True)
class Progress:
    """The next step; ``key`` (K) goes to the holder's browser only and is never stored."""

    transaction_id: str
    key: bytes = field(repr=False)
    step: str
    #: the second factors this reset asks for, by method (none at the passcode step)
    second_factors: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Recovered:
    serial: str
    holder_name: str
    recovery_code_used: bool


def _card_of(session: Session, rt: Runtime, link: Link) -> Card:
    card = session.get(Card, link.card_id)
    assert card is not None
    if not may_self_unlock(card, link_unlocks=bool(link.details.get("unlock"))):
        raise RecoveryNotAllowed(
            f"This card cannot be reset here: it is {card.status}.",
            remedy=f"Contact {contact(rt, session, card)}.",
        )
    if card.recovery_failures >= CARD_MAX_FAILURES:
        raise blocked(rt, session, card)
    return card


def open_reset(rt: Runtime, token: str) -> ResetPage:
    """The page behind a reset link: the questions. Opening it changes nothing."""
    with rt.db() as session:
        link = links.live(session, rt, token, links.Purpose.RESET, LINK_MAX_FAILURES)
        card = _card_of(session, rt, link)
        person = session.get(Person, card.person_id)
        assert person is not None
        questions = tuple(
            Question(position=q.position, text=q.question)
            for q in session.scalars(
                select(SecurityQuestion)
                .where(SecurityQuestion.card_id == card.id)
                .order_by(SecurityQuestion.position)
            )
        )
        if len(questions) != 3:
            raise RecoveryNotAllowed(
                "This card has no security questions, so it cannot be reset here.",
                remedy=f"Contact {contact(rt, session, card)}.",
            )
        record = open_record(rt.master_key, card)
        return ResetPage(
            holder_name=notifications.holder_name(person),
            questions=questions,
            has_recovery_code=any(s.name == RECOVERY_CODE_SLOT for s in record.slots),
            expires_at=link.expires_at,
            closing=links.closing(link, rt.clock()),
            tries_left=LINK_MAX_FAILURES - link.failed_attempts,
        )


# --- step 1: answers or recovery code ----------------------------------------------------


def _clean_answers(answers: Mapping[int, str] | None) -> dict[int, str]:
    given = {int(k): v for k, v in (answers or {}).items() if isinstance(v, str) and v.strip()}
    if not set(given) <= {1, 2, 3}:
        raise InvalidInput("There are only questions 1, 2 and 3.")
    for position, text in given.items():
        if len(text) > MAX_ANSWER:
            raise InvalidInput(
                f"Answer {position} is longer than {MAX_ANSWER} characters.",
                field=f"answer{position}",
            )
    return given


def answer(
    rt: Runtime,
    actor: Actor,
    token: str,
    *,
    answers: Mapping[int, str] | None = None,
    recovery_code: str | None = None,
) -> Progress:
    """Check two or three answers (or the recovery code); on success the next step."""
    given = _clean_answers(answers)
    code = (recovery_code or "").strip() or None
    if code is None and len(given) < 2:
        raise InvalidInput(
            "Answer at least two of the three questions.",
            field=next(f"answer{n}" for n in (1, 2, 3) if n not in given),
        )
    with rt.db() as session:
        link = links.live(session, rt, token, links.Purpose.RESET, LINK_MAX_FAILURES)
        card = _card_of(session, rt, link)
        record, version = open_record(rt.master_key, card), card.record_version
    if code is not None and not any(s.name == RECOVERY_CODE_SLOT for s in record.slots):
        raise InvalidInput("This card has no recovery code; answer the questions.")
    via = "recovery_code" if code is not None else "answers"
    reserved = reserve(rt, link.id, card.id)
    with rt.kdf_gate.slot():
        try:
            dek = (
                open_recovery_code_slot(record, code)
                if code is not None
                else open_recovery_slots(record, given)
            )
        except (WrongSecret, SlotNotFound, InvalidInput) as exc:
            reason = "incorrect recovery code" if code else "incorrect security answers"
            if isinstance(exc, InvalidInput) and not isinstance(exc, SlotNotFound):
                reason = "malformed recovery code"
            raise failed(
                rt, actor, link.id, card, reserved, AuditAction.RECOVERY_ANSWERS, reason
            ) from None
    txn_id = new_id()
    key, wrap = hand_over(dek, txn_id)
    with transaction(rt.db) as session:
        release(session, link.id, card.id)
        return _begin(session, rt, actor, card.id, link, txn_id, wrap, key, version, via)


def _begin(
    session: Session,
    rt: Runtime,
    actor: Actor,
    card_id: str,
    link: Link,
    txn_id: str,
    wrap: bytes,
    key: bytes,
    version: int,
    via: str,
) -> Progress:
    card = session.get(Card, card_id)
    assert card is not None
    now = rt.clock()
    txn = AuthTransaction(
        id=txn_id,
        card_id=card.id,
        organisation_id=card.organisation_id,
        method=via,
        purpose=PURPOSE,
        state=STEP_FACTOR,
        session_wrap=wrap,
        factor_state={"link": link.id, "version": version, "via": via},
        client_address=actor.client_address,
        client_name=recovery_factors.CLIENT_NAME,
        created_at=now,
        expires_at=link.expires_at,
    )
    session.add(txn)
    session.flush()
    offers = recovery_factors.offers(session, rt, actor, card, txn)
    org = session.get(Organisation, card.organisation_id)
    assert org is not None
    required = policy_of(org).recovery_requires_second_factor
    if not (required and offers):
        txn.state, offers = STEP_PASSCODE, []
    factors = {offer.method: org_ids for offer, org_ids in offers}
    txn.factor_state = {**txn.factor_state, "factors": factors}
    audit.record_for_card(
        session,
        rt,
        actor,
        card,
        action=AuditAction.RECOVERY_ANSWERS,
        details={"link": link.id, "via": via},
    )
    return Progress(
        transaction_id=txn_id,
        key=key,
        step=txn.state,
        second_factors=tuple(offer.method for offer, _ in offers),
    )


# --- steps 2 and 3 share: the step's transaction, held by this browser -----------------------


@dataclass(frozen=True, kw_only=True)
class Step:
    """A reset's transaction, checked: live link, usable card, this browser's K."""

    link_id: str
    card: Card
    txn: AuthTransaction


def step_in(rt: Runtime, token: str, transaction_id: str, key: bytes, state: str) -> Step:
    """The reset's transaction at step ``state`` in this browser, or RecoveryStepInvalid."""
    with rt.db() as session:
        link = links.live(session, rt, token, links.Purpose.RESET, LINK_MAX_FAILURES)
        card = _card_of(session, rt, link)
        txn = session.get(AuthTransaction, transaction_id) if transaction_id else None
        if (
            txn is None
            or txn.purpose != PURPOSE
            or txn.card_id != card.id
            or txn.factor_state.get("link") != link.id
            or txn.state != state
            or rt.clock() >= txn.expires_at
            or txn.session_wrap is None
        ):
            raise RecoveryStepInvalid()
    _check_key(txn, key)
    return Step(link_id=link.id, card=card, txn=txn)


def _check_key(txn: AuthTransaction, key: bytes) -> None:
    """Only the browser that answered the questions holds K."""
    assert txn.session_wrap is not None
    try:
        wipe(unwrap_session(txn.session_wrap, key, session_id=txn.id))
    except (WrongSecret, InvalidInput):
        raise RecoveryStepInvalid() from None


def factor_step(rt: Runtime, token: str, transaction_id: str, key: bytes) -> Step:
    """The reset as it waits for its second factor in this browser (or RecoveryStepInvalid)."""
    return step_in(rt, token, transaction_id, key, STEP_FACTOR)


def current_step(rt: Runtime, token: str, transaction_id: str, key: bytes) -> Progress:
    """Where this browser's reset stands (to show the right page); RecoveryStepInvalid if lost."""
    for state in (STEP_FACTOR, STEP_PASSCODE):
        try:
            step = step_in(rt, token, transaction_id, key, state)
        except RecoveryStepInvalid:
            continue
        methods = sorted(step.txn.factor_state.get("factors", {})) if state == STEP_FACTOR else []
        return Progress(
            transaction_id=step.txn.id,
            key=key,
            step=state,
            second_factors=tuple(methods),
        )
    raise RecoveryStepInvalid()
