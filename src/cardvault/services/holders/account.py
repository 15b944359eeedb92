"""The signed-in holder's own card (DESIGN §3.3, new): passcode, security questions, recovery code.

The portal's "My card" signs in with identifier + passcode + second factor (the engine,
purpose ``holder``); its web session keeps the card session's id. Every change here asks
for the current passcode again: it opens the passcode slot, and the DEK it yields is what
the new slots are made from (the portal never holds SK). A wrong current passcode counts
toward the card's lockout like any other (reserved before the KDF runs).

- a new passcode replaces the passcode slot; every other session of the card ends, with
  the open reset links (the old passcode is gone, so what was opened with it goes too);
- new security questions rebuild the three recovery slots ({1,2}, {1,3}, {2,3});
- a new recovery code replaces the old code's slot (the old code stops working).

Each is audited as the holder's act and confirmed by email through the outbox.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cardvault.crypto.aead import wipe
from cardvault.crypto.keyslots import (
    PASSCODE_SLOT,
    RECOVERY_CODE_SLOT,
    CardKeyRecord,
    make_passcode_slot,
    make_recovery_code_slot,
    make_recovery_slots,
    new_recovery_code,
)
from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.org_policy import OrganisationPolicy
from cardvault.domain.vocabulary import MethodKind
from cardvault.errors import Conflict, InvalidInput
from cardvault.json_types import JsonObject
from cardvault.services.audit import trail as audit
from cardvault.services.cards.enrolment import SecurityAnswer, check_questions, store_questions
from cardvault.services.cards.sealing import open_record, seal_record
from cardvault.services.devices.unlock import check_passcode_text, open_with_passcode
from cardvault.services.notifications import outbox as notifications
from cardvault.services.piv import card_pin as card_pins
from cardvault.services.recovery.new_passcode import check_new_passcode
from cardvault.services.signin import sessions as card_sessions
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import Card, CardSession, Organisation, Person, SecurityQuestion
from cardvault.store.queries import cards as card_queries
from cardvault.store.queries import links as link_queries
from cardvault.store.queries.organisations import policy_of

PURPOSE = "holder"


@dataclass(frozen=True, kw_only=True)
class HolderCard:
    """What "My card" shows of the signed-in holder's card."""

    serial: str
    status: str
    holder_name: str
    email: str | None
    organisation: str
    organisation_name: str
    questions: tuple[str, ...]
    has_recovery_code: bool
    may_add_methods: bool
    #: the organisation allows security keys (so "My card" offers to register one)
    security_keys: bool = False
    #: the card PIN for smartcard software (PC/SC channel): set, and blocked
    card_pin_set: bool = False
    card_pin_blocked: bool = False


@dataclass(frozen=True, kw_only=True)
class Signed:
    """The signed-in holder, read in the caller's transaction."""

    row: CardSession
    card: Card
    person: Person
    organisation: Organisation
    actor: Actor

    @property
    def policy(self) -> OrganisationPolicy:
        """The organisation's policy (parsed once per row)."""
        return policy_of(self.organisation)


def signed_in(session: Session, rt: Runtime, actor: Actor, session_id: str) -> Signed:
    """The holder's live card session (its idle timer restarted), or SessionInvalid."""
    row, card = card_sessions.use_id(
        session, rt, session_id, client_address=actor.client_address, purpose=PURPOSE
    )
    person = session.get(Person, card.person_id)
    org = session.get(Organisation, row.organisation_id)
    assert person is not None and org is not None
    return Signed(
        row=row,
        card=card,
        person=person,
        organisation=org,
        actor=card_sessions.owner(actor, row),
    )


def my_card(rt: Runtime, actor: Actor, session_id: str) -> HolderCard:
    """What My card shows: the card, its questions and methods; raises SessionInvalid."""
    pin = card_pins.status_by_id(rt, actor, session_id)
    with transaction(rt.db) as session:
        me = signed_in(session, rt, actor, session_id)
        questions = session.scalars(
            select(SecurityQuestion.question)
            .where(SecurityQuestion.card_id == me.card.id)
            .order_by(SecurityQuestion.position)
        )
        slots = {s.name for s in open_record(rt.master_key, me.card).slots}
        return HolderCard(
            serial=me.card.serial,
            status=me.card.status,
            holder_name=me.person.common_name,
            email=me.person.email,
            organisation=me.organisation.code,
            organisation_name=me.organisation.name,
            questions=tuple(questions),
            has_recovery_code=RECOVERY_CODE_SLOT in slots,
            may_add_methods=me.policy.holders_add_methods,
            security_keys=me.policy.allows(MethodKind.SECURITY_KEY),
            card_pin_set=pin.pin_set,
            card_pin_blocked=pin.blocked,
        )


def change_passcode(
    rt: Runtime, actor: Actor, session_id: str, *, current: str, passcode: str, confirm: str
) -> int:
    """A new passcode slot for the same DEK; every other session of the card ends.

    Returns how many other sessions were ended."""
    check_passcode_text(current)
    with transaction(rt.db) as session:
        person = signed_in(session, rt, actor, session_id).person
    check_new_passcode(rt, person, passcode, confirm)
    if passcode == current:
        raise InvalidInput("Choose a passcode different from your current one.", field="passcode")

    def rebuild(record: CardKeyRecord, dek: bytearray, card: Card) -> CardKeyRecord:
        generation = record.slot(PASSCODE_SLOT).generation + 1
        return record.with_slot(
            make_passcode_slot(
                dek,
                card_id=card.id,
                passcode=passcode,
                params=rt.settings.argon2,
                generation=generation,
            )
        )

    ended: list[int] = []

    def after(session: Session, me: Signed) -> JsonObject:
        result = session.execute(
            delete(CardSession).where(
                CardSession.card_id == me.card.id, CardSession.id != me.row.id
            )
        )
        ended.append(int(getattr(result, "rowcount", 0) or 0))
        link_queries.revoke_open(session, card_id=me.card.id, now=rt.clock())
        notifications.passcode_changed(session, rt, me.card)
        return {"sessions_ended": ended[0]}

    _change(rt, actor, session_id, current, rebuild, after, AuditAction.CARD_PASSCODE_CHANGED)
    return ended[0]


def change_questions(
    rt: Runtime,
    actor: Actor,
    session_id: str,
    *,
    current: str,
    answers: Sequence[SecurityAnswer],
) -> None:
    """Three new questions and answers: the three recovery slots are rebuilt."""
    check_passcode_text(current)
    check_questions(answers, current)

    def rebuild(record: CardKeyRecord, dek: bytearray, card: Card) -> CardKeyRecord:
        generation = max(s.generation for s in record.slots) + 1
        for slot in make_recovery_slots(
            dek,
            card_id=card.id,
            answers=[a.answer for a in answers],
            params=rt.settings.argon2,
            generation=generation,
        ):
            record = record.with_slot(slot)
        return record

    def after(session: Session, me: Signed) -> None:
        store_questions(session, me.card, answers)
        notifications.card_changed(
            session, rt, me.card, "the security questions and answers of your card were changed"
        )

    _change(rt, actor, session_id, current, rebuild, after, AuditAction.CARD_QUESTIONS_CHANGED)


@dataclass(frozen=True, kw_only=True)
class RecoveryCode:
    """A new recovery code, shown to the holder once and never stored in clear."""

    code: str = field(repr=False)


def renew_recovery_code(
    rt: Runtime, actor: Actor, session_id: str, *, current: str
) -> RecoveryCode:
    """A new recovery code (≥ 128 bits) in place of the old one; shown once."""
    check_passcode_text(current)
    code = new_recovery_code()

    def rebuild(record: CardKeyRecord, dek: bytearray, card: Card) -> CardKeyRecord:
        generation = max(s.generation for s in record.slots) + 1
        return record.with_slot(
            make_recovery_code_slot(dek, card_id=card.id, recovery_code=code, generation=generation)
        )

    def after(session: Session, me: Signed) -> None:
        notifications.card_changed(
            session,
            rt,
            me.card,
            "a new recovery code was made for your card (the old one no longer works)",
        )

    _change(rt, actor, session_id, current, rebuild, after, AuditAction.CARD_RECOVERY_CODE_RENEWED)
    return RecoveryCode(code=code)


def confirm_passcode(rt: Runtime, actor: Actor, session_id: str, current: str) -> Signed:
    """The current passcode, before a change that makes no new slot (removing a phone):
    a wrong one counts toward the lock like any other. Returns the signed-in holder."""
    check_passcode_text(current)
    with transaction(rt.db) as session:
        me = signed_in(session, rt, actor, session_id)
    wipe(open_with_passcode(rt, me.actor, me.card, current, action=AuditAction.HOLDER_PASSCODE))
    with transaction(rt.db) as session:
        card_queries.passcode_right(session, me.card.id)
    return me


def _change(
    rt: Runtime,
    actor: Actor,
    session_id: str,
    current: str,
    rebuild: Callable[[CardKeyRecord, bytearray, Card], CardKeyRecord],
    after: Callable[[Session, Signed], JsonObject | None],
    action: AuditAction,
) -> None:
    """The shell every change shares: the current passcode opens the DEK (a wrong one
    counts toward the lock), ``rebuild`` makes the new record, and one transaction seals
    it — unless the card changed meanwhile — runs ``after`` (email; it may give the audit
    details) and records ``action``."""
    with transaction(rt.db) as session:
        me = signed_in(session, rt, actor, session_id)
        card, holder = me.card, me.actor
    dek = open_with_passcode(rt, holder, card, current, action=AuditAction.HOLDER_PASSCODE)
    try:
        with rt.kdf_gate.slot():
            record = rebuild(open_record(rt.master_key, card), dek, card)
    finally:
        wipe(dek)
    with transaction(rt.db) as session:
        me = signed_in(session, rt, actor, session_id)
        fresh = card_queries.passcode_right(session, card.id)
        if fresh.record_version != card.record_version:
            raise Conflict("Your card changed while you were doing this; nothing was changed.")
        seal_record(session, rt.master_key, fresh, record)
        me = replace(me, card=fresh)
        details = after(session, me)
        audit.record_for_card(
            session,
            rt,
            me.actor,
            me.card,
            action=action,
            organisation_id=me.organisation.id,
            details=details,
        )
