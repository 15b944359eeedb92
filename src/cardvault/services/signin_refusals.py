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

import secrets
from dataclasses import replace
from typing import Any, NoReturn

from sqlalchemy.orm import Session

from cardvault.crypto.aead import wipe
from cardvault.crypto.kdf import derive_key
from cardvault.domain.org_policy import OrganisationPolicy
from cardvault.errors import AuthenticationFailed
from cardvault.services import audit, card_sessions, network
from cardvault.services.identification import Target
from cardvault.services.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import CardStatus

#: the one answer to every refusal before the passcode, and to a wrong passcode: it must
#: not tell them apart, yet still help a holder whose card someone else locked
GENERIC_FAILURE = (
    "Passcode or identifier not recognised. If your card has been locked, you will have "
    "received an email saying so, with a link to unlock it; otherwise check both and try again."
)


class SignInFailed(AuthenticationFailed):
    """Unknown identifier, wrong passcode, locked or unusable card: all look the same."""

    code = "sign_in_failed"

    def __init__(self) -> None:
        super().__init__(GENERIC_FAILURE)


def why_refused(session: Session, actor: Actor, purpose: str, target: Target) -> str | None:
    """Why this sign-in stops before its passcode is tried (for the audit log only)."""
    try:
        network.check_client(target.organisation, actor.client_address)
    except network.NetworkNotAllowed:
        return "client network not allowed"
    policy = OrganisationPolicy.from_dict(target.organisation.policy)
    if not policy.allows(target.method):
        return f"sign-in with {target.method} not allowed by policy"
    if purpose == "ra" and not card_sessions.ra_roles(session, target.person.id):
        return "no RA role"
    if target.card.status != CardStatus.ACTIVE.value:
        return f"card is {target.card.status}"
    return None


def decoy(
    rt: Runtime,
    actor: Actor,
    passcode: str,
    target: Target | None,
    reason: str,
    details: dict[str, Any],
) -> NoReturn:
    """Refuse like a wrong passcode: the same KDF as a real attempt (with the parameters new
    passcode slots get), the reason audited in one transaction as a wrong passcode's is, the
    same answer. The caller holds a place in the KDF gate, as a real attempt does."""
    with rt.kdf_gate.running():
        wipe(derive_key(passcode.encode(), secrets.token_bytes(16), rt.settings.argon2))
    with transaction(rt.db) as session:
        if target is not None:
            record_for(session, rt, actor, target, "auth.login", "failure", reason, details)
        else:
            audit.record(
                session,
                rt,
                actor,
                action="auth.login",
                outcome="failure",
                reason=reason,
                details={**details, "client_address": actor.client_address},
            )
    raise SignInFailed()


def record_for(
    session: Session,
    rt: Runtime,
    actor: Actor,
    target: Target,
    action: str,
    outcome: str,
    reason: str | None,
    details: dict[str, Any] | None = None,
) -> None:
    """An audit event about the sign-in of ``target``'s holder, from ``actor``'s address."""
    who = replace(actor, ref=f"holder:{target.person.id}")
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
