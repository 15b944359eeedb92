"""Partial enrolment, the holder's side: finishing an invitation on the portal.

How the holder reaches the card's DEK without the issuance passcode:

- The RA's invitation (:func:`cardvault.services.ra.cards.invite`) opened the card with the
  issuance passcode and added an **invitation slot**: KEK = HKDF(link token ‖ 0 ‖ SMS code).
  The token went by email, the code by SMS to the number the RA entered, so both channels
  are needed. The card is ``enrolled``; the link lives ``invitation_link_days``.
- :func:`confirm_code` opens the slot with the link's token and the typed code;
  wrong codes are reserved on the link before checking (at most five). The DEK is re-wrapped
  under a key K that only the holder's browser keeps, as in recovery.
- :func:`complete` sets the strong passcode and three security questions (and optionally a
  recovery code): the passcode slot is replaced, the recovery slots added, the invitation
  slot removed, the link consumed exactly once, and the card is ``active``.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from cardvault.crypto.aead import wipe
from cardvault.crypto.keyslots import (
    INVITATION_SLOT,
    PASSCODE_SLOT,
    CardKeyRecord,
    WrongSecret,
    make_passcode_slot,
    make_recovery_code_slot,
    make_recovery_slots,
    new_recovery_code,
    open_invitation_slot,
    unwrap_session,
)
from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.card_pin import check_card_pin
from cardvault.domain.card_pin import rule as pin_rule
from cardvault.domain.vocabulary import AuthState, CardStatus
from cardvault.errors import InvalidInput
from cardvault.services.audit import trail as audit
from cardvault.services.cards.enrolment import SecurityAnswer, check_questions, store_questions
from cardvault.services.cards.errors import WrongCode
from cardvault.services.cards.sealing import hand_over, open_record
from cardvault.services.notifications import outbox as notifications
from cardvault.services.piv import card_pin as card_pins
from cardvault.services.recovery import links
from cardvault.services.recovery.errors import LinkInvalid, RecoveryStepInvalid
from cardvault.services.recovery.new_passcode import check_new_passcode, replace_record
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import (
    AuthTransaction,
    Card,
    Link,
    Organisation,
    Person,
)
from cardvault.store.types import new_id

MAX_FAILURES = 5
PURPOSE = "invitation"
INVITABLE = (CardStatus.ISSUED, CardStatus.ENROLLED)

#: digits in the invitation code the RA hands over in person (typed on the portal)
INVITATION_CODE_DIGITS = 6


@dataclass(frozen=True, kw_only=True)
class InvitationPage:
    """What the invitation page shows before the code is typed."""

    holder_name: str
    organisation_name: str
    expires_at: datetime
    #: less than a minute left (``links.closing``): the page says so, to the second
    closing: bool
    tries_left: int


@dataclass(frozen=True, kw_only=True)
class CodeAccepted:
    """The enrolment code checked out: the transaction the rest of the form continues."""

    transaction_id: str
    key: bytes = field(repr=False)


@dataclass(frozen=True, kw_only=True)
class Completed:
    """The invitation completed: the card is enrolled (the recovery code shown once)."""

    serial: str
    holder_name: str
    #: the organisation's code: the holder's second factor is set up in it next
    organisation: str = ""
    recovery_code: str | None = field(default=None, repr=False)


# --- the holder's side --------------------------------------------------------------------


def card_pin_rule(rt: Runtime, token: str) -> str:
    """The card PIN rule of the invited card's organisation, in words, for the setup page
    (raises LinkInvalid for a link that no longer works)."""
    with rt.db() as session:
        _link, card = _live(session, rt, token)
        return pin_rule(card_pins.minimum_for(session, card.organisation_id))


def _live(session: Session, rt: Runtime, token: str) -> tuple[Link, Card]:
    link = links.live(session, rt, token, links.Purpose.INVITATION, MAX_FAILURES)
    card = session.get(Card, link.card_id)
    assert card is not None
    if card.status != CardStatus.ENROLLED:
        raise LinkInvalid(
            f"This invitation no longer applies: the card is {card.status}.",
            reason="card_state",
            remedy="Ask your Registration Authority.",
        )
    return link, card


def open_invitation(rt: Runtime, token: str) -> InvitationPage:
    """The page behind an invitation link. Opening it changes nothing."""
    with rt.db() as session:
        link, card = _live(session, rt, token)
        person = session.get(Person, card.person_id)
        org = session.get(Organisation, card.organisation_id)
        assert person is not None and org is not None
        return InvitationPage(
            holder_name=notifications.holder_name(person),
            organisation_name=org.name,
            expires_at=link.expires_at,
            closing=links.closing(link, rt.clock()),
            tries_left=MAX_FAILURES - link.failed_attempts,
        )


def confirm_code(rt: Runtime, actor: Actor, token: str, code: str) -> CodeAccepted:
    """The code from the SMS, with the link's token, opens the invitation slot."""
    cleaned = "".join((code or "").split())
    if not (cleaned.isascii() and cleaned.isdigit() and len(cleaned) == INVITATION_CODE_DIGITS):
        raise InvalidInput(
            f"Enter the {INVITATION_CODE_DIGITS}-digit code from the text message.", field="code"
        )
    with rt.db() as session:
        link, card = _live(session, rt, token)
        link_id = link.id
        record = open_record(rt.master_key, card)
    reserved = links.reserve_failure(rt, link_id, MAX_FAILURES)
    try:
        dek = open_invitation_slot(record, links.token_bytes(token), cleaned)
    except WrongSecret:
        raise _wrong_code(rt, actor, card, link_id, reserved) from None
    txn_id = new_id()
    key, wrap = hand_over(dek, txn_id)
    with transaction(rt.db) as session:
        links.release_failure(session, link_id)
        now = rt.clock()
        session.add(
            AuthTransaction(
                id=txn_id,
                card_id=card.id,
                organisation_id=card.organisation_id,
                method="sms_code",
                purpose=PURPOSE,
                state=AuthState.ENROL,
                session_wrap=wrap,
                factor_state={"link": link_id, "version": card.record_version},
                client_address=actor.client_address,
                created_at=now,
                expires_at=link.expires_at,
            )
        )
        audit.record_for_card(
            session,
            rt,
            actor,
            card,
            action=AuditAction.INVITATION_CODE,
            details={"link": link_id},
        )
    return CodeAccepted(transaction_id=txn_id, key=bytes(key))


def _wrong_code(rt: Runtime, actor: Actor, card: Card, link_id: str, reserved: int) -> Exception:
    with transaction(rt.db) as session:
        audit.record_for_card(
            session,
            rt,
            actor,
            card,
            action=AuditAction.INVITATION_CODE,
            outcome="failure",
            reason="incorrect code",
            details={"link": link_id},
        )
    if reserved >= MAX_FAILURES:
        return links.worn_out(links.Purpose.INVITATION)
    left = MAX_FAILURES - reserved
    return WrongCode(
        f"That code is not right. {left} {'try' if left == 1 else 'tries'} left.",
        remedy="Use the newest text message we sent you.",
        field="code",
    )


def complete(
    rt: Runtime,
    actor: Actor,
    token: str,
    transaction_id: str,
    key: bytes,
    *,
    passcode: str,
    confirm: str,
    answers: Sequence[SecurityAnswer],
    want_recovery_code: bool = False,
    card_pin: tuple[str, str] | None = None,
) -> Completed:
    """Passcode and security questions: the card becomes active. ``card_pin`` (the PIN and
    its confirmation), if given, is the card PIN for smartcard software (DESIGN §3.8
    revised): the card's PIV applet is built with it once the card is active."""
    link_id, card, txn, person = _step(rt, token, transaction_id, key)
    check_new_passcode(rt, person, passcode, confirm)
    check_questions(answers, passcode)
    if card_pin is not None:
        with rt.db() as session:
            minimum = card_pins.minimum_for(session, card.organisation_id)
        _check_card_pin(*card_pin, minimum=minimum)
    dek = _unwrap(txn, key)
    code = new_recovery_code() if want_recovery_code else None
    try:
        record = _enrolled_record(rt, card, dek, passcode, answers, code)
    finally:
        wipe(dek)
    with transaction(rt.db) as session:
        card = replace_record(
            session,
            rt,
            link_id,
            card.id,
            txn,
            record,
            doing="setting it up",
            status=CardStatus.ENROLLED,
        )
        store_questions(session, card, answers)
        card.failed_attempts = 0
        card.status, card.status_changed_at = CardStatus.ACTIVE, rt.clock()
        audit.record_for_card(
            session,
            rt,
            actor,
            card,
            action=AuditAction.CARD_ENROLLED,
            details={"serial": card.serial, "via": "invitation", "recovery_code": bool(code)},
        )
        org = session.get(Organisation, card.organisation_id)
        assert org is not None
        org_code = org.code
    if card_pin is not None:
        card_pins.provision(rt, actor, card_id=card.id, pin=card_pin[0], via="invitation")
    return Completed(
        serial=card.serial,
        holder_name=notifications.holder_name(person),
        organisation=org_code,
        recovery_code=code,
    )


def _check_card_pin(pin: str, again: str, *, minimum: int) -> None:
    try:
        check_card_pin(pin, minimum=minimum)
    except InvalidInput as exc:
        raise type(exc)(exc.message, field="card_pin") from None
    if not hmac.compare_digest(pin.encode(), again.encode()):
        raise InvalidInput("The two card PINs differ.", field="card_pin_confirm")


def check_step(rt: Runtime, token: str, transaction_id: str, key: bytes) -> None:
    """Raise unless this browser confirmed the code for this invitation (to show the form)."""
    _step(rt, token, transaction_id, key)


def _step(
    rt: Runtime, token: str, transaction_id: str, key: bytes
) -> tuple[str, Card, AuthTransaction, Person]:
    with rt.db() as session:
        link, card = _live(session, rt, token)
        txn = session.get(AuthTransaction, transaction_id) if transaction_id else None
        if (
            txn is None
            or txn.purpose != PURPOSE
            or txn.factor_state.get("link") != link.id
            or rt.clock() >= txn.expires_at
            or txn.session_wrap is None
        ):
            raise RecoveryStepInvalid()
        person = session.get(Person, card.person_id)
        assert person is not None
    wipe(_unwrap(txn, key))
    return link.id, card, txn, person


def _unwrap(txn: AuthTransaction, key: bytes) -> bytearray:
    assert txn.session_wrap is not None
    try:
        return unwrap_session(txn.session_wrap, key, session_id=txn.id)
    except (WrongSecret, InvalidInput):
        raise RecoveryStepInvalid() from None


def _enrolled_record(
    rt: Runtime,
    card: Card,
    dek: bytearray,
    passcode: str,
    answers: Sequence[SecurityAnswer],
    code: str | None,
) -> CardKeyRecord:
    record = open_record(rt.master_key, card)
    params, generation = rt.settings.argon2, record.slot(PASSCODE_SLOT).generation + 1
    with rt.kdf_gate.slot():
        new = record.with_slot(
            make_passcode_slot(
                dek, card_id=card.id, passcode=passcode, params=params, generation=generation
            )
        )
        for slot in make_recovery_slots(
            dek,
            card_id=card.id,
            answers=[a.answer for a in answers],
            params=params,
            generation=generation,
        ):
            new = new.with_slot(slot)
    if code is not None:
        new = new.with_slot(
            make_recovery_code_slot(dek, card_id=card.id, recovery_code=code, generation=generation)
        )
    return new.without_slot(INVITATION_SLOT)
