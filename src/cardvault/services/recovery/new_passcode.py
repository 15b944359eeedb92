"""Step 3 of a reset (DESIGN §3.3): the new passcode becomes the passcode slot of the same DEK.

The link is consumed by one conditional UPDATE in the same transaction, so of any number of
concurrent completions exactly one changes the card. The lockout count and recovery count
reset, every session and link of the card ends, the holder is emailed.
"""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.orm import Session

from cardvault.crypto.aead import wipe
from cardvault.crypto.keyslots import (
    PASSCODE_SLOT,
    RECOVERY_CODE_SLOT,
    CardKeyRecord,
    make_passcode_slot,
    unwrap_session,
)
from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.passcode_policy import check_passcode
from cardvault.domain.vocabulary import CardStatus
from cardvault.errors import Conflict, InvalidInput
from cardvault.services.audit import trail as audit
from cardvault.services.cards.enrolment import passcode_policy, personal_words
from cardvault.services.cards.lookup import end_card_state
from cardvault.services.cards.sealing import open_record, seal_record
from cardvault.services.notifications import outbox as notifications
from cardvault.services.recovery import links
from cardvault.services.recovery.reset import (
    STEP_PASSCODE,
    Recovered,
    step_in,
)
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import (
    AuthTransaction,
    Card,
    Person,
)
from cardvault.store.queries import cards as card_queries


def set_passcode(
    rt: Runtime,
    actor: Actor,
    token: str,
    transaction_id: str,
    key: bytes,
    *,
    passcode: str,
    confirm: str,
) -> Recovered:
    """The new passcode replaces the passcode slot; the link is consumed exactly once."""
    step = step_in(rt, token, transaction_id, key, STEP_PASSCODE)
    with rt.db() as session:
        person = session.get(Person, step.card.person_id)
        assert person is not None
    check_new_passcode(rt, person, passcode, confirm)
    record = open_record(rt.master_key, step.card)
    assert step.txn.session_wrap is not None
    dek = unwrap_session(step.txn.session_wrap, key, session_id=step.txn.id)
    try:
        with rt.kdf_gate.slot():
            slot = make_passcode_slot(
                dek,
                card_id=step.card.id,
                passcode=passcode,
                params=rt.settings.argon2,
                generation=record.slot(PASSCODE_SLOT).generation + 1,
            )
    finally:
        wipe(dek)
    new_record = record.with_slot(slot)
    code_used = step.txn.factor_state.get("via") == "recovery_code"
    if code_used:  # a recovery code works once (NIST SP 800-63B §6.1.2.3)
        new_record = new_record.without_slot(RECOVERY_CODE_SLOT)
    with transaction(rt.db) as session:
        card = replace_record(
            session, rt, step.link_id, step.card.id, step.txn, new_record, doing="resetting it"
        )
        _reactivate(session, rt, card)
        notifications.passcode_changed(session, rt, card)
        audit.record_for_card(
            session,
            rt,
            actor,
            card,
            action=AuditAction.CARD_PASSCODE_RESET,
            details={"link": step.link_id, "via": step.txn.factor_state.get("via")},
        )
        return Recovered(
            serial=card.serial,
            holder_name=notifications.holder_name(person),
            recovery_code_used=code_used,
        )


def replace_record(
    session: Session,
    rt: Runtime,
    link_id: str,
    card_id: str,
    txn: AuthTransaction,
    record: CardKeyRecord,
    *,
    doing: str,
    status: CardStatus | None = None,
) -> Card:
    """The last step of a link's transaction: the link consumed (exactly once, whoever else
    completes at the same moment), and the card's new record sealed unless the card changed
    since the transaction read it (raises Conflict; ``status``: the one it must still have);
    the card's transactions end with it. Returns the card, locked."""
    links.consume(session, rt, link_id)
    card = card_queries.for_update(session, card_id)
    moved_on = status is not None and card.status != status
    if moved_on or card.record_version != txn.factor_state.get("version"):
        raise Conflict(f"The card changed while you were {doing}; nothing was changed.")
    seal_record(session, rt.master_key, card, record)
    session.execute(delete(AuthTransaction).where(AuthTransaction.card_id == card.id))
    return card


def check_new_passcode(rt: Runtime, person: Person, passcode: str, confirm: str) -> None:
    """Raise InvalidInput (``field`` names which) unless the new passcode is given, strong
    enough by the policy, and confirmed."""
    if not isinstance(passcode, str) or not passcode:
        raise InvalidInput("Choose a new passcode.", field="passcode")
    check_passcode(passcode, policy=passcode_policy(rt), personal=personal_words(person))
    if confirm != passcode:
        raise InvalidInput("The two passcodes are not the same.", field="confirm")


def _reactivate(session: Session, rt: Runtime, card: Card) -> None:
    """Active again, counters reset, every session and other link of the card ended."""
    now = rt.clock()
    card.failed_attempts, card.recovery_failures, card.second_factor_failures = 0, 0, 0
    card.status, card.locked_from, card.lock_reason = CardStatus.ACTIVE, None, None
    card.status_reason, card.status_changed_at = "passcode reset by the holder", now
    end_card_state(session, card.id, now)
