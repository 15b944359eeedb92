"""Enrolment: the holder's contact details, strong passcode and three security questions.

The issuance passcode opens the card (and counts towards the lockout like any passcode);
the strong passcode replaces its slot and the answers create the three recovery slots, all
in one transaction, after which the card is ``active``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import delete
from sqlalchemy.orm import Session

from cardvault.crypto.aead import wipe
from cardvault.crypto.keyslots import (
    INVITATION_SLOT,
    CardKeyRecord,
    WrongSecret,
    make_passcode_slot,
    make_recovery_code_slot,
    make_recovery_slots,
    new_recovery_code,
    normalize_answer,
    open_passcode_slot,
)
from cardvault.domain import identifiers
from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.card_pin import check_card_pin
from cardvault.domain.passcode_policy import PasscodePolicy, check_passcode
from cardvault.domain.vocabulary import CardStatus
from cardvault.errors import Conflict, InvalidInput
from cardvault.services.audit import trail as audit
from cardvault.services.cards.lookup import get_card
from cardvault.services.cards.sealing import open_record, seal_record
from cardvault.services.piv import card_pin as card_pins
from cardvault.services.signin import lockout
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import Card, Person, SecurityQuestion
from cardvault.store.queries import links as link_queries

MAX_QUESTION = 200
MAX_ANSWER = 200


@dataclass(frozen=True, kw_only=True)
class SecurityAnswer:
    """A security question and the holder's answer to it."""

    question: str
    answer: str = field(repr=False)


@dataclass(frozen=True, kw_only=True)
class EnrolRequest:
    """What enrolling a card takes: the issuance passcode, the new passcode, three answers."""

    serial: str
    issuance_passcode: str = field(repr=False)
    passcode: str = field(repr=False)
    answers: tuple[SecurityAnswer, ...]
    email: str | None = None
    phone: str | None = None
    recovery_code: bool = False
    #: the holder's card PIN for smartcard software (DESIGN §3.8 revised), if chosen now
    card_pin: str | None = field(default=None, repr=False)


@dataclass(frozen=True, kw_only=True)
class Enrolled:
    """An enrolled card, with the recovery code to show once (if the policy makes one)."""

    serial: str
    status: str
    recovery_code: str | None = field(default=None, repr=False)


def passcode_policy(rt: Runtime) -> PasscodePolicy:
    """The passcode rule from the settings (length and zxcvbn score)."""
    return PasscodePolicy(
        min_length=rt.settings.passcode_min_length, min_score=rt.settings.passcode_min_score
    )


def personal_words(person: Person, email: str | None = None) -> list[str]:
    """Words a passcode must not be built on: the holder's names, user id and email."""
    words = [person.forename, person.surname, person.user_id, person.common_name]
    words += [w for w in (email, person.email) if w]
    return words


@dataclass(frozen=True, kw_only=True)
class EnrolmentForm:
    """What enrolling a card asks for, with the rules the holder's choices must meet, so that
    a form or a prompt can say what is wrong before anything is sent (``enrol`` checks again)."""

    serial: str
    holder: str
    #: the questions offered (configured); a holder may also write their own
    questions: tuple[str, ...]
    policy: PasscodePolicy
    personal: tuple[str, ...] = field(repr=False)

    def check_passcode(self, passcode: str) -> None:
        """Raise WeakPasscode (with its reason) if the passcode does not meet the policy."""
        check_passcode(passcode, policy=self.policy, personal=self.personal)


def enrolment_form(rt: Runtime, serial: str) -> EnrolmentForm:
    """The form for a card that can be enrolled now (refused otherwise, before any prompt)."""
    with rt.db() as session:
        card = get_card(session, serial)
        check_enrollable(card)
        person = session.get(Person, card.person_id)
        assert person is not None
        return EnrolmentForm(
            serial=card.serial,
            holder=person.common_name,
            questions=tuple(rt.settings.security_questions),
            policy=passcode_policy(rt),
            personal=tuple(personal_words(person)),
        )


def check_questions(answers: Sequence[SecurityAnswer], passcode: str | None = None) -> None:
    """Three distinct, non-empty questions with three distinct, non-empty answers."""
    if len(answers) != 3:
        raise InvalidInput("Choose exactly three security questions.", field="questions")
    for number, item in enumerate(answers, start=1):
        earlier = answers[: number - 1]
        check_question(number, item.question, [e.question for e in earlier])
        check_answer(number, item.answer, [e.answer for e in earlier], passcode)


def check_question(number: int, question: str, earlier: Sequence[str]) -> None:
    """Question ``number`` is written, not too long, and not one of the ``earlier`` ones."""
    q = " ".join(question.split())
    if not q:
        raise InvalidInput(
            f"Choose or write security question {number}.", field=f"question{number}"
        )
    if len(q) > MAX_QUESTION:
        raise InvalidInput(
            f"Security question {number} must be at most {MAX_QUESTION} characters.",
            field=f"question{number}",
        )
    if q.casefold() in {" ".join(e.split()).casefold() for e in earlier}:
        raise InvalidInput(
            f"Security question {number} is the same as another one; "
            "choose three different questions.",
            field=f"question{number}",
        )


def check_answer(
    number: int, answer: str, earlier: Sequence[str], passcode: str | None = None
) -> None:
    """Answer ``number`` is given, not too long, unlike the ``earlier`` ones and the passcode."""
    a = normalize_answer(answer)
    if not a:
        raise InvalidInput(
            f"Enter an answer to security question {number}.", field=f"answer{number}"
        )
    if len(answer) > MAX_ANSWER:
        raise InvalidInput(
            f"Answer {number} must be at most {MAX_ANSWER} characters.", field=f"answer{number}"
        )
    if a in {normalize_answer(e) for e in earlier}:
        raise InvalidInput(
            f"Answer {number} is the same as another answer; each answer must be different.",
            field=f"answer{number}",
        )
    if passcode and a == normalize_answer(passcode):
        raise InvalidInput(f"Answer {number} must not be your passcode.", field=f"answer{number}")


def enrol(rt: Runtime, actor: Actor, req: EnrolRequest) -> Enrolled:
    """Enrol an issued card: passcode, security answers and contact details, in one
    transaction. Raises InvalidInput or WeakPasscode for what was given, NotFound for an
    unknown card, Conflict (CardRevoked, a wrong status) when it cannot be enrolled."""
    email = identifiers.email(req.email) if req.email else None
    phone = identifiers.phone(req.phone) if req.phone else None
    with rt.db() as session:
        card = get_card(session, req.serial)
        person = session.get(Person, card.person_id)
        assert person is not None
        check_enrollable(card)
        record = open_record(rt.master_key, card)
        pin_minimum = card_pins.minimum_for(session, card.organisation_id)
    check_passcode(req.passcode, policy=passcode_policy(rt), personal=personal_words(person, email))
    check_questions(req.answers, req.passcode)
    if req.card_pin is not None:
        check_card_pin(req.card_pin, minimum=pin_minimum)
    dek = open_issuance_slot(rt, actor, card, record, req.issuance_passcode)
    try:
        code = new_recovery_code() if req.recovery_code else None
        new_record = _enrolled_record(rt, card.id, record, dek, req, code)
    finally:
        wipe(dek)
    with transaction(rt.db) as session:
        card = get_card(session, req.serial, for_update=True)
        check_enrollable(card)
        person = session.get(Person, card.person_id)
        assert person is not None
        _apply_contact(person, email, phone)
        seal_record(session, rt.master_key, card, new_record)
        store_questions(session, card, req.answers)
        link_queries.revoke_open(session, card_id=card.id, now=rt.clock(), purpose="invitation")
        lockout.passcode_right(session, card)
        card.status, card.status_changed_at = CardStatus.ACTIVE, rt.clock()
        audit.record_for_card(
            session,
            rt,
            actor,
            card,
            action=AuditAction.CARD_ENROLLED,
            details={"serial": card.serial, "recovery_code": code is not None},
        )
    if req.card_pin is not None:
        card_pins.provision(rt, actor, card_id=card.id, pin=req.card_pin, via="enrolment")
    return Enrolled(serial=card.serial, status=card.status, recovery_code=code)


def check_enrollable(card: Card) -> None:
    """Refuse a card that is not waiting for its holder's enrolment (Conflict)."""
    if not card.status.is_awaiting_enrolment:
        raise Conflict(f"Card {card.serial} cannot be enrolled: its status is {card.status}.")


def open_issuance_slot(
    rt: Runtime, actor: Actor, card: Card, record: CardKeyRecord, passcode: str
) -> bytearray:
    """The DEK from the issuance passcode, the try counted like any passcode (DESIGN §3.3).

    Raises WrongPasscode (after recording it, and locking on the last try).
    """
    reserved = lockout.reserve_attempt(rt, card.id)
    try:
        return open_passcode_slot(record, passcode)
    except WrongSecret:
        raise lockout.passcode_wrong(
            rt, actor, card.id, reserved, action=AuditAction.ENROLMENT_PASSCODE
        ) from None


def _enrolled_record(
    rt: Runtime,
    card_id: str,
    record: CardKeyRecord,
    dek: bytearray,
    req: EnrolRequest,
    code: str | None,
) -> CardKeyRecord:
    params = rt.settings.argon2
    generation = record.slot("passcode").generation + 1
    if any(s.name == INVITATION_SLOT for s in record.slots):
        record = record.without_slot(INVITATION_SLOT)  # the invitation is answered
    new = record.with_slot(
        make_passcode_slot(
            dek, card_id=card_id, passcode=req.passcode, params=params, generation=generation
        )
    )
    for slot in make_recovery_slots(
        dek,
        card_id=card_id,
        answers=[a.answer for a in req.answers],
        params=params,
        generation=generation,
    ):
        new = new.with_slot(slot)
    if code is not None:
        new = new.with_slot(
            make_recovery_code_slot(dek, card_id=card_id, recovery_code=code, generation=generation)
        )
    return new


def _apply_contact(person: Person, email: str | None, phone: str | None) -> None:
    if email:
        person.email = email
    if phone:
        person.phone = phone


def store_questions(session: Session, card: Card, answers: Sequence[SecurityAnswer]) -> None:
    """The card's three questions (never the answers: those only key the recovery slots)."""
    session.execute(delete(SecurityQuestion).where(SecurityQuestion.card_id == card.id))
    for position, item in enumerate(answers, start=1):
        session.add(
            SecurityQuestion(
                card_id=card.id, position=position, question=" ".join(item.question.split())
            )
        )
