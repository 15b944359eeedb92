"""Refusals before the passcode look exactly like a wrong passcode (DESIGN §3.3, revised).

An unknown identifier, a card that is locked, revoked or not active, an RA sign-in by
someone without an RA role, a caller outside the organisation's networks, a sign-in route
the organisation's policy does not allow: each answers with the same status and body as a
wrong passcode (:class:`SignInFailed`), and after the same work, above all the same key
derivation, so that neither the answer nor its timing tells them apart. The reason goes to
the audit log only. A holder whose card someone else locked learns it from the lock email,
which is why the one answer mentions it.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import NoReturn

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from cardvault.crypto.kdf import Argon2Params
from cardvault.crypto.keyslots import PASSCODE_SLOT, open_no_passcode_slot
from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.vocabulary import CardStatus
from cardvault.errors import CardvaultError
from cardvault.json_types import JsonInput
from cardvault.keystore.provider import MasterKey, unpack
from cardvault.services.audit import trail as audit
from cardvault.services.cards.sealing import open_record
from cardvault.services.networks import allow_list as network
from cardvault.services.networks.errors import NetworkNotAllowed
from cardvault.services.signin import sessions as card_sessions
from cardvault.services.signin.errors import SignInFailed
from cardvault.services.signin.identification import Target
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction, without_flush
from cardvault.store.models import Card, table_of
from cardvault.store.queries.organisations import policy_of
from cardvault.store.types import new_id

_CARDS = table_of(Card)
# what a reservation touches (the card's row), without changing it
_LOCK_CARD = (
    select(_CARDS.c.failed_attempts).where(_CARDS.c.id == bindparam("decoy_card")).with_for_update()
)


def why_refused(session: Session, actor: Actor, purpose: str, target: Target) -> str | None:
    """Why this sign-in stops before its passcode is tried (for the audit log only)."""
    try:
        network.check_client(target.organisation, actor.client_address)
    except NetworkNotAllowed:
        return "client network not allowed"
    policy = policy_of(target.organisation)
    if not policy.allows(target.route):
        return f"sign-in with {target.route} not allowed by policy"
    if purpose == "ra" and not card_sessions.ra_roles(
        session, target.person.id, target.organisation.id
    ):
        return "no RA role"
    if target.card.status != CardStatus.ACTIVE:
        return f"card is {target.card.status}"
    return None


def decoy(
    rt: Runtime,
    actor: Actor,
    passcode: str,
    target: Target | None,
    reason: str,
    details: Mapping[str, JsonInput],
) -> NoReturn:
    """Refuse like a wrong passcode, after the same work: a transaction shaped like the
    attempt's reservation (the card's row locked, nothing changed), the card's record
    opened, the same KDF (with the parameters new passcode slots get), and the reason
    audited in one transaction with the card's row locked, as a wrong passcode's is. The
    caller holds a place in the KDF gate, as a real attempt does."""
    card_id = target.card.id if target is not None else None
    with transaction(rt.db) as session:
        without_flush(session)
        session.connection().scalar(_LOCK_CARD, {"decoy_card": card_id or new_id()})
    with rt.kdf_gate.running():
        open_no_passcode_slot(passcode, _slot_params(rt, target))
    with transaction(rt.db) as session:
        session.get(Card, card_id or new_id(), with_for_update=True)
        if target is not None:
            record_for(
                session,
                rt,
                actor,
                target,
                AuditAction.AUTH_LOGIN,
                "failure",
                reason,
                details,
                proved=False,
            )
        else:
            audit.record(
                session,
                rt,
                actor,
                action=AuditAction.AUTH_LOGIN,
                outcome="failure",
                reason=reason,
                details={**details, "client_address": actor.client_address},
            )
    raise SignInFailed()


def _slot_params(rt: Runtime, target: Target | None) -> Argon2Params:
    """The KDF parameters of the card's own passcode slot (its record opened as a real
    attempt opens it), or those new slots get (a stand-in record opened all the same)."""
    if target is None or target.card.key_record is None:
        _open_stand_in(rt.master_key)
        return rt.settings.argon2
    try:
        params = open_record(rt.master_key, target.card).slot(PASSCODE_SLOT).kdf
    except CardvaultError:
        params = None
    return params or rt.settings.argon2


#: per master key, a blob the size of a card's record sealed under it (made on first use)
_STAND_INS: weakref.WeakKeyDictionary[MasterKey, bytes] = weakref.WeakKeyDictionary()
_STAND_IN_AAD = b"cardvault: stand-in record"
_STAND_IN_SIZE = 4096


def _open_stand_in(master: MasterKey) -> None:
    """What opening a card's record costs (an AES-GCM open, or an HSM call), for no card."""
    blob = _STAND_INS.get(master)
    if blob is None or unpack(blob)[0] != master.mk_version:  # made before a key rotation
        blob = _STAND_INS[master] = master.seal(bytes(_STAND_IN_SIZE), aad=_STAND_IN_AAD)
    master.open(blob, aad=_STAND_IN_AAD)


def record_for(
    session: Session,
    rt: Runtime,
    actor: Actor,
    target: Target,
    action: AuditAction,
    outcome: str,
    reason: str | None,
    details: Mapping[str, JsonInput] | None = None,
    *,
    proved: bool = True,
) -> None:
    """An audit event about the sign-in of ``target``'s holder, from ``actor``'s address.

    After the right passcode (``proved``) it is the holder's act; before it, nobody has
    proved who they are, so a refusal there is the request's (``anonymous``), as a wrong
    passcode is (``lockout.passcode_wrong``; docs/architecture.md, the actor references).
    """
    who = actor.as_holder(target.person.id) if proved else actor
    audit.record(
        session,
        rt,
        who,
        action=action,
        outcome=outcome,
        reason=reason,
        organisation_id=target.organisation.id,
        person_id=target.person.id,
        card_id=target.card.id,
        details={**(details or {}), "client_address": actor.client_address},
    )


def after_passcode(
    rt: Runtime,
    actor: Actor,
    card_id: str,
    organisation_id: str,
    transaction_id: str,
    reason: str,
    *,
    action: AuditAction = AuditAction.AUTH_SECOND_FACTOR,
    details: Mapping[str, JsonInput] | None = None,
) -> None:
    """Audit a step after the passcode refused before its answer was checked (the caller
    outside the organisation's networks, the card no longer active, an organisation that
    cannot be chosen), in a transaction of its own: the step's own rolled back. On the
    chain of ``organisation_id`` (the sign-in's, or the one it was to go to)."""
    with transaction(rt.db) as session:
        card = session.get(Card, card_id)
        assert card is not None
        audit.record(
            session,
            rt,
            actor.as_holder(card.person_id),
            action=action,
            outcome="failure",
            reason=reason,
            organisation_id=organisation_id,
            person_id=card.person_id,
            card_id=card.id,
            details={
                **(details or {}),
                "transaction": transaction_id,
                "client_address": actor.client_address,
            },
        )
