"""Sign-in that starts from a security key, with no identifier typed (DESIGN §3.2 step 1).

1. ``begin``: options for a discoverable credential (no ``allowCredentials``), the state
   kept server-side with an expiry.
2. ``complete``: the assertion names its credential, which names the card and the
   organisation; once verified (origin, RP ID, challenge, presence, verification per
   policy, sign counter) the service hands back a **proof**: 256 random bits, only its
   SHA-256 stored, valid for a few minutes.
3. The passcode step presents the proof twice: as the identifier (kind ``fido2``, which
   finds the card) and as the second factor (which consumes it, once). So the key is
   both what names the holder and what they have, and the passcode is what they know.

Nothing here reveals whether an email address or account exists: the only input is a
key's own signed answer.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardvault.domain import webauthn
from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.vocabulary import CardStatus
from cardvault.errors import CardvaultError
from cardvault.json_types import JsonValue
from cardvault.services.audit import trail as audit
from cardvault.services.directory.registry import get_org
from cardvault.services.networks import allow_list as network
from cardvault.services.security_keys.errors import ChooseOrganisation
from cardvault.services.security_keys.keys import (
    ASSERTION,
    CeremonyStart,
    audit_failure,
    ceremony_expiry,
    claim,
    forget_expired,
    keys_by_credential,
    policy_for,
    raw_id,
    require_allowed,
    verify_assertion,
)
from cardvault.services.signin import factor_lockout
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import (
    Association,
    Card,
    CardSession,
    Organisation,
    Person,
    WebAuthnCeremony,
)
from cardvault.store.types import new_id

PROOF_MINUTES = 5
MAX_PROOF = 100


@dataclass(frozen=True, kw_only=True)
class SignInProof:
    """A verified key, to be spent on the passcode step."""

    proof: str = field(repr=False)
    expires_at: datetime
    organisation: str
    organisation_name: str
    nickname: str


@dataclass(kw_only=True)
class _Attempt:
    """What is known so far, so that a refusal is audited with it."""

    row: WebAuthnCeremony | None = None
    assoc: Association | None = None
    org_id: str | None = None
    #: the key's assertion was checked (a refusal after this is a wrong second factor)
    checked: bool = False


def proof_hash(proof: str) -> str:
    """The stored form of a sign-in proof (SHA-256)."""
    return hashlib.sha256(proof.encode()).hexdigest()


def begin(rt: Runtime, *, org_code: str | None = None) -> CeremonyStart:
    """Ask for any key that holds a credential for this service (a discoverable one).

    Without an organisation, the key's PIN is asked for (the strict default), because
    the organisation whose policy applies is known only from the answer."""
    now = rt.clock()
    with transaction(rt.db) as session:
        forget_expired(session, now)
        org = get_org(session, org_code) if org_code else None
        if org is not None:
            require_allowed(org)
        options, state = webauthn.begin_assertion(policy_for(rt.settings, org), credentials=None)
        row = WebAuthnCeremony(
            id=new_id(),
            kind=ASSERTION,
            state=state,
            organisation_id=org.id if org else None,
            created_at=now,
            expires_at=ceremony_expiry(rt.settings, now),
        )
        session.add(row)
    return CeremonyStart(ceremony_id=row.id, options=options, expires_at=row.expires_at)


def complete(
    rt: Runtime, actor: Actor, *, ceremony_id: str, response: Mapping[str, JsonValue]
) -> SignInProof:
    """Verify the key's answer; every refusal is audited with its reason.

    The key's assertion is the sign-in's second factor (the proof stands for it at the
    passcode step): it is reserved on the card's second-factor counter before it is
    checked, and an assertion that does not check out counts (``factor_lockout``)."""
    known = _active_card_of(rt, ceremony_id, response)
    with ExitStack() as stack:
        held = (
            stack.enter_context(
                factor_lockout.reserved(rt, actor, known[0], organisation_id=known[1])
            )
            if known
            else None
        )
        failure: CardvaultError | None = None
        with transaction(rt.db) as session:
            attempt = _Attempt()
            try:
                return _complete(session, rt, actor, ceremony_id, response, attempt)
            except CardvaultError as exc:
                _refused(session, rt, actor, ceremony_id, exc, attempt, held)
                failure = exc
        if held is not None:
            held.committed = True
    assert failure is not None
    raise failure


def _active_card_of(
    rt: Runtime, ceremony_id: str, response: Mapping[str, JsonValue]
) -> tuple[str, str] | None:
    """The active card and organisation the answer's credential names (read only), if one."""
    with rt.db() as session:
        row = session.get(WebAuthnCeremony, ceremony_id[:36])
        try:
            keys = keys_by_credential(
                session, raw_id(response), row.organisation_id if row else None
            )
        except CardvaultError:
            return None
        card = session.get(Card, keys[0].card_id) if len(keys) == 1 else None
        if card is None or card.status != CardStatus.ACTIVE:
            return None
        return card.id, keys[0].organisation_id


def _refused(
    session: Session,
    rt: Runtime,
    actor: Actor,
    ceremony_id: str,
    exc: CardvaultError,
    attempt: _Attempt,
    held: factor_lockout.Reservation | None,
) -> None:
    """Audit the refusal; an assertion that was checked and failed also counts."""
    counted = held if attempt.checked and attempt.assoc and held else None
    if counted is not None and attempt.assoc and attempt.assoc.card_id != counted.card_id:
        counted = None
    if counted is not None:  # the card's row first, as every transaction that may lock it
        session.get(Card, counted.card_id, with_for_update=True)
    if attempt.row is not None and attempt.row.status == "answered":
        attempt.row.status = "failed"
    if attempt.row is None:  # unknown, replayed or expired: audit where it belonged
        known = session.get(WebAuthnCeremony, ceremony_id[:36])
        attempt.org_id = known.organisation_id if known else None
    audit_failure(
        session,
        rt,
        actor,
        exc,
        action=AuditAction.SECURITY_KEY_SIGN_IN,
        assoc=attempt.assoc,
        org_id=attempt.org_id,
        details={"ceremony": ceremony_id[:36]},
    )
    if counted is not None and attempt.org_id is not None:
        counted.wrong(
            session, rt, actor, organisation_id=attempt.org_id, door=factor_lockout.SIGN_IN
        )


def _complete(
    session: Session,
    rt: Runtime,
    actor: Actor,
    ceremony_id: str,
    response: Mapping[str, JsonValue],
    attempt: _Attempt,
) -> SignInProof:
    now = rt.clock()
    row = attempt.row = claim(session, ceremony_id, ASSERTION, now)
    attempt.org_id = row.organisation_id
    assoc = attempt.assoc = _the_key(session, response, row.organisation_id)
    org = session.get(Organisation, assoc.organisation_id)
    card = session.get(Card, assoc.card_id)
    assert org is not None and card is not None
    attempt.org_id = org.id
    network.check_client(org, actor.client_address)
    attempt.checked = True
    verified = verify_assertion(
        session,
        rt.settings,
        org=org,
        state=row.state,
        candidates=[assoc],
        response=response,
        now=now,
    )
    proof = secrets.token_urlsafe(32)
    row.status, row.proof_hash = "verified", proof_hash(proof)
    row.card_id, row.organisation_id, row.association_id = card.id, org.id, assoc.id
    row.expires_at = now + timedelta(minutes=PROOF_MINUTES)
    row.details = {"nickname": assoc.label}
    audit.record_for_card(
        session,
        rt,
        actor,
        card,
        action=AuditAction.SECURITY_KEY_SIGN_IN,
        organisation_id=org.id,
        details={
            "ceremony": row.id,
            "association": assoc.id,
            "nickname": assoc.label,
            "aaguid": assoc.details.get("aaguid"),
            "user_verified": verified.result.user_verified,
            "sign_count": verified.result.new_sign_count,
        },
    )
    return SignInProof(
        proof=proof,
        expires_at=row.expires_at,
        organisation=org.code,
        organisation_name=org.name,
        nickname=assoc.label or "security key",
    )


def _the_key(
    session: Session, response: Mapping[str, JsonValue], organisation_id: str | None
) -> Association:
    candidates = keys_by_credential(session, raw_id(response), organisation_id)
    if not candidates:
        raise webauthn.UnknownCredential(
            "This security key is not registered for a card here.",
            remedy="Use the key your RA registered, or ask them to register this one.",
        )
    if len(candidates) > 1:
        raise ChooseOrganisation(
            "This security key is registered in several organisations.",
            remedy="Say which one (--organisation CODE) and try again.",
        )
    return candidates[0]


# --- the passcode step -----------------------------------------------------------------


def proven_ceremony(session: Session, proof: str) -> WebAuthnCeremony | None:
    """The verified, unspent sign-in a proof stands for, whether or not its time is up
    (None when there is none): identification only names the card, and spending the proof
    (``consume_proof``, on the runtime's clock) refuses an expired one with its own message."""
    if not isinstance(proof, str) or not 1 <= len(proof) <= MAX_PROOF:
        return None
    row = session.scalar(
        select(WebAuthnCeremony).where(WebAuthnCeremony.proof_hash == proof_hash(proof))
    )
    return row if row is not None and row.status == "verified" else None


def verified_ceremony(session: Session, proof: str, now: datetime) -> WebAuthnCeremony | None:
    """The verified, unspent sign-in a proof stands for, still in its time (None else)."""
    row = proven_ceremony(session, proof)
    return row if row is not None and now < row.expires_at else None


def consume_proof(
    session: Session, proof: str, *, card_id: str, organisation_id: str, now: datetime
) -> WebAuthnCeremony | None:
    """Spend a proof on the sign-in of this card in this organisation: once only."""
    row = verified_ceremony(session, proof, now)
    if row is None:
        return None
    session.refresh(row, with_for_update=True)
    if row.status != "verified" or row.card_id != card_id or row.organisation_id != organisation_id:
        return None
    row.status = "consumed"
    return row


def holder_email(rt: Runtime, card_session_id: str) -> str | None:
    """The email address of a card session's holder: a sign-in that started from a key
    can then be confirmed later (re-authentication) the usual way."""
    with rt.db() as session:
        row = session.get(CardSession, card_session_id)
        person = session.get(Person, row.person_id) if row else None
        return person.email if person else None


def same_holder(rt: Runtime, card_session_id: str, other_card_session_id: str) -> bool:
    """Whether two card sessions are the same person's (re-authenticating with a key must
    not hand a web session to someone else's card)."""
    with rt.db() as session:
        one = session.get(CardSession, card_session_id)
        other = session.get(CardSession, other_card_session_id)
        return one is not None and other is not None and one.person_id == other.person_id
