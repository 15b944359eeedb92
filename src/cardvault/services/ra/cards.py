"""What an RA does to a person's card: issue, enrol (full or by invitation), lock, unlock,
revoke. Each function first finds the card within the RA's organisation (404 outside).

Partial enrolment (invitation): the RA, who knows the issuance passcode, opens the card;
the service adds an *invitation* key slot whose KEK is HKDF(link token ‖ SMS code), sends
the link by email and the code by SMS, and the card becomes ``enrolled``. The portal opens
that slot with the link and the code, sets the strong passcode and security questions,
removes the slot and activates the card (docs/protocols/invitation.md).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from cardvault.crypto.aead import wipe
from cardvault.crypto.keyslots import (
    INVITATION_SLOT,
    CardKeyRecord,
    make_invitation_slot,
)
from cardvault.domain import identifiers
from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.card_pin import check_card_pin
from cardvault.domain.org_policy import OrganisationPolicy
from cardvault.domain.passcode_policy import check_passcode
from cardvault.domain.vocabulary import CardStatus
from cardvault.errors import Conflict, InvalidInput
from cardvault.services.audit import trail as audit
from cardvault.services.cards import enrolment, issuance
from cardvault.services.cards.invitations import INVITATION_CODE_DIGITS
from cardvault.services.cards.sealing import open_record, seal_record
from cardvault.services.cards.views import CardSummary
from cardvault.services.piv import card_pin as card_pins
from cardvault.services.ra import actions as ra_actions
from cardvault.services.ra import approvals
from cardvault.services.ra.actions import RaContext
from cardvault.services.ra.persons import card_in_scope, person_in_scope
from cardvault.services.recovery import links
from cardvault.services.signin import lockout
from cardvault.services.signin.errors import WrongPasscode
from cardvault.services.system.runtime import Runtime
from cardvault.store.db import transaction
from cardvault.store.models import Card, Organisation, Person
from cardvault.store.queries.organisations import policy_of

#: the longest reason the vRA Manager takes for a lock or an unlock
MAX_REASON = 200


def issue(
    rt: Runtime,
    ctx: RaContext,
    user_id: str,
    *,
    issuance_passcode: str,
    confirm: str,
    key_algorithm: str | None = None,
) -> issuance.IssuedCard:
    """Issue a card to a person of the organisation (the vRA Manager and the RA API alike):
    refused (NotApproved) until a sponsor approved it when the organisation's policy asks
    for that; raises InvalidInput when the two passcodes differ, and what issuing raises."""
    if issuance_passcode != confirm:
        raise InvalidInput("The two issuance passcodes are different.", field="confirm")
    with rt.db() as session:
        person = person_in_scope(session, ctx, user_id)
        approvals.require_approved(session, ctx, person)
    return ra_actions.issue(
        rt,
        ctx,
        user_id=person.user_id,
        issuance_passcode=issuance_passcode,
        key_algorithm=key_algorithm,
    )


@dataclass(frozen=True, kw_only=True)
class EnrolForm:
    """What the enrolment page collects (the holder types the secrets)."""

    email: str
    phone: str
    issuance_passcode: str = field(repr=False)
    passcode: str = field(repr=False)
    passcode_confirm: str = field(repr=False)
    answers: tuple[enrolment.SecurityAnswer, ...]
    recovery_code: bool = False
    #: the holder's card PIN for smartcard software, typed twice (both empty: not now)
    card_pin: str = field(default="", repr=False)
    card_pin_confirm: str = field(default="", repr=False)


def enrolment_problems(
    rt: Runtime, ctx: RaContext, user_id: str, f: EnrolForm
) -> list[InvalidInput]:
    """Every problem with the form at once (the page shows them all), none of them secret."""
    problems: list[InvalidInput] = []
    with rt.db() as session:
        person = person_in_scope(session, ctx, user_id)
        pin_minimum = card_pins.minimum_for(session, ctx.organisation_id)
    try:
        identifiers.email(f.email)
    except InvalidInput as exc:
        problems.append(exc)
    try:
        if f.phone.strip():
            identifiers.phone(f.phone)
    except InvalidInput as exc:
        problems.append(exc)
    if not f.issuance_passcode:
        problems.append(InvalidInput("Enter the issuance passcode.", field="issuance_passcode"))
    try:
        check_passcode(
            f.passcode,
            policy=enrolment.passcode_policy(rt),
            personal=enrolment.personal_words(person, f.email),
        )
    except InvalidInput as exc:
        problems.append(InvalidInput(exc.message, field="passcode"))
    if f.passcode != f.passcode_confirm:
        problems.append(
            InvalidInput(
                "The passcodes are different; type the same one twice.", field="passcode_confirm"
            )
        )
    problems += _question_problems(f.answers, f.passcode)
    problems += _card_pin_problems(f, pin_minimum)
    return problems


def _card_pin_problems(f: EnrolForm, minimum: int) -> list[InvalidInput]:
    if not (f.card_pin or f.card_pin_confirm):
        return []
    try:
        check_card_pin(f.card_pin, minimum=minimum)
    except InvalidInput as exc:
        return [InvalidInput(exc.message, field="card_pin")]
    if f.card_pin != f.card_pin_confirm:
        return [InvalidInput("The two card PINs differ.", field="card_pin_confirm")]
    return []


def _question_problems(
    answers: Sequence[enrolment.SecurityAnswer], passcode: str
) -> list[InvalidInput]:
    """The service's question rules, applied item by item so that each bad one is named:
    an item is checked against the good ones before it (bad ones are set aside)."""
    problems: list[InvalidInput] = []
    questions: list[str] = []
    given: list[str] = []
    for number, item in enumerate(answers, start=1):
        try:
            enrolment.check_question(number, item.question, questions)
            enrolment.check_answer(number, item.answer, given, passcode)
        except InvalidInput as exc:
            problems.append(exc)
            continue
        questions.append(item.question)
        given.append(item.answer)
    return problems


def enrol(rt: Runtime, ctx: RaContext, user_id: str, f: EnrolForm) -> enrolment.Enrolled:
    """Enrol a card from the vRA Manager; raises InvalidInput listing the form's problems."""
    problems = enrolment_problems(rt, ctx, user_id, f)
    if problems:
        raise problems[0]
    with rt.db() as session:
        card = card_in_scope(session, ctx, user_id)
    return enrolment.enrol(
        rt,
        ctx.actor,
        enrolment.EnrolRequest(
            serial=card.serial,
            issuance_passcode=f.issuance_passcode,
            passcode=f.passcode,
            answers=f.answers,
            email=f.email,
            phone=f.phone or None,
            recovery_code=f.recovery_code,
            card_pin=f.card_pin or None,
        ),
    )


@dataclass(frozen=True, kw_only=True)
class Invitation:
    """What the RA is told: where the invitation went (never the link or the code)."""

    email: str
    phone: str
    expires_in_days: int


def invite(
    rt: Runtime, ctx: RaContext, user_id: str, *, email: str, phone: str, issuance_passcode: str
) -> Invitation:
    """Partial enrolment: contact details now; the holder finishes on the portal."""
    mail, tel = _contact(email, phone)
    if not issuance_passcode:
        raise InvalidInput("Enter the issuance passcode.", field="issuance_passcode")
    with rt.db() as session:
        card = card_in_scope(session, ctx, user_id)
        enrolment.check_enrollable(card)
        record = open_record(rt.master_key, card)
    try:
        dek = enrolment.open_issuance_slot(rt, ctx.actor, card, record, issuance_passcode)
    except WrongPasscode as exc:
        raise InvalidInput(exc.message, field="issuance_passcode") from None
    code = "".join(secrets.choice("0123456789") for _ in range(INVITATION_CODE_DIGITS))
    try:
        return _store_invitation(rt, ctx, user_id, dek, mail, tel, code)
    finally:
        wipe(dek)


def _contact(email: str, phone: str) -> tuple[str, str]:
    mail = identifiers.email(email)
    if not (phone or "").strip():
        raise InvalidInput("Enter a mobile phone number for the enrolment code.", field="phone")
    return mail, identifiers.phone(phone)


def _store_invitation(
    rt: Runtime,
    ctx: RaContext,
    user_id: str,
    dek: bytearray,
    mail: str,
    tel: str,
    code: str,
) -> Invitation:
    with transaction(rt.db) as session:
        card = card_in_scope(session, ctx, user_id)
        enrolment.check_enrollable(card)
        org = session.get(Organisation, ctx.organisation_id)
        person = session.get(Person, card.person_id)
        assert org is not None and person is not None
        policy = policy_of(org)
        minutes = policy.invitation_link_days * 24 * 60
        link, token = links.new_link(
            session,
            rt,
            purpose=links.INVITATION,
            card=card,
            minutes=minutes,
            details={"slot": INVITATION_SLOT},
        )
        record = open_record(rt.master_key, card)
        generation = _next_generation(record)
        slot = make_invitation_slot(
            dek, card_id=card.id, token=links.token_bytes(token), code=code, generation=generation
        )
        seal_record(session, rt.master_key, card, record.with_slot(slot))
        person.email, person.phone = mail, tel
        lockout.passcode_right(session, card)
        card.status, card.status_changed_at = CardStatus.ENROLLED, rt.clock()
        _queue_invitation(session, rt, card, person, org, policy, token, code, minutes)
        ctx.audit_act(
            session,
            rt,
            AuditAction.CARD_INVITED,
            person_id=person.id,
            card_id=card.id,
            details={
                "serial": card.serial,
                "link": link.id,
                "expires_at": audit.iso(link.expires_at),
            },
        )
    return Invitation(email=mail, phone=tel, expires_in_days=policy.invitation_link_days)


def _next_generation(record: CardKeyRecord) -> int:
    return max((s.generation for s in record.slots), default=0) + 1


def _queue_invitation(
    session: Session,
    rt: Runtime,
    card: Card,
    person: Person,
    org: Organisation,
    policy: OrganisationPolicy,
    token: str,
    code: str,
    minutes: int,
) -> None:
    links.queue(
        session,
        rt,
        channel="email",
        recipient=person.email or "",
        template="invitation",
        card=card,
        context={
            "holder_name": person.common_name,
            "support_contact": policy.ra_contact,
            "organisation_name": org.name,
            "link": links.url(rt, links.INVITATION, token),
            "valid_minutes": minutes,
        },
    )
    links.queue(
        session,
        rt,
        channel="sms",
        recipient=person.phone or "",
        template="invitation_code",
        card=card,
        context={"code": code, "valid_minutes": minutes},
    )


def lock(rt: Runtime, ctx: RaContext, user_id: str, *, reason: str) -> CardSummary:
    """Lock the person's card (audited); Conflict when its status cannot be locked."""
    reason = issuance.clean_reason(reason, limit=MAX_REASON)
    with transaction(rt.db) as session:
        card = card_in_scope(session, ctx, user_id)
        session.refresh(card, with_for_update=True)
        if not card.status.is_lockable:
            raise Conflict(f"Card {card.serial} cannot be locked: its status is {card.status}.")
        lockout.lock_in_session(session, rt, ctx.actor, card, reason=reason)
        return CardSummary.of(card)


def unlock(rt: Runtime, ctx: RaContext, user_id: str, *, reason: str) -> bool:
    """Back to the status before the lock; the holder gets a reset link when they can use one.

    Returns whether a reset link was sent.
    """
    reason = issuance.clean_reason(reason, limit=MAX_REASON)
    with transaction(rt.db) as session:
        card = card_in_scope(session, ctx, user_id)
        session.refresh(card, with_for_update=True)
        if card.status != CardStatus.LOCKED:
            raise Conflict(f"Card {card.serial} is not locked (its status is {card.status}).")
        card.status = card.locked_from or CardStatus.ACTIVE
        card.locked_from, card.lock_reason, card.failed_attempts = None, None, 0
        card.second_factor_failures = 0
        card.status_reason, card.status_changed_at = reason, rt.clock()
        sent = _send_reset_link(session, rt, ctx, card)
        audit.record_for_card(
            session,
            rt,
            ctx.actor,
            card,
            action=AuditAction.CARD_UNLOCKED,
            reason=reason,
            organisation_id=ctx.organisation_id,
            details={"serial": card.serial, "status": card.status, "reset_link_sent": sent},
        )
    return sent


def _send_reset_link(session: Session, rt: Runtime, ctx: RaContext, card: Card) -> bool:
    person = session.get(Person, card.person_id)
    org = session.get(Organisation, ctx.organisation_id)
    assert person is not None and org is not None
    if card.status != CardStatus.ACTIVE or not person.email:
        return False
    policy = policy_of(org)
    _link, token = links.new_link(
        session,
        rt,
        purpose=links.RESET,
        card=card,
        minutes=policy.reset_link_minutes,
        details={"why": "unlocked by RA"},
    )
    links.queue(
        session,
        rt,
        channel="email",
        recipient=person.email,
        template="reset_requested",
        card=card,
        context={
            "holder_name": person.common_name,
            "support_contact": policy.ra_contact,
            "link": links.url(rt, links.RESET, token),
            "valid_minutes": policy.reset_link_minutes,
        },
    )
    return True


def revoke(
    rt: Runtime, ctx: RaContext, user_id: str, *, reason: str, reason_code: str = "unspecified"
) -> CardSummary:
    """Revoke the person's card here: its keys are destroyed (audited), the CRL re-signed."""
    with rt.db() as session:
        card = card_in_scope(session, ctx, user_id)
    return issuance.revoke_card(
        rt,
        ctx.actor,
        card.serial,
        reason=reason,
        organisation_id=ctx.organisation_id,
        reason_code=reason_code,
    )
