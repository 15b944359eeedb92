"""Registering a FIDO2 security key for a card (an RA at their desk, or an operator).

``begin_registration`` gives the options for ``navigator.credentials.create`` (the card's
keys in the organisation excluded; a discoverable credential when asked for), and keeps
the state server-side for the one answer; ``complete_registration`` verifies the answer
with ``domain.webauthn`` under the organisation's policy (allowed at all, user
verification, allowed models) and stores the credential as an association. Only the
actor who began a registration can complete it; every refusal is audited.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.orm import Session

from cardvault.domain import webauthn
from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.vocabulary import CardStatus, MethodKind
from cardvault.errors import CardvaultError, Conflict, NotFound
from cardvault.json_types import JsonValue
from cardvault.services.cards.lookup import get_card
from cardvault.services.cards.methods import audit_added, insert_unique
from cardvault.services.cards.views import MethodView
from cardvault.services.directory.registry import get_org, is_member
from cardvault.services.notifications import outbox as notifications
from cardvault.services.security_keys.keys import (
    REGISTRATION,
    CeremonyStart,
    active_keys,
    audit_failure,
    b64url,
    ceremony_expiry,
    claim,
    credential_key,
    forget_expired,
    policy_for,
    require_allowed,
    stored_credential,
    user_handle,
)
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import Association, Card, Organisation, Person, WebAuthnCeremony
from cardvault.store.types import new_id


def begin_registration(
    rt: Runtime, actor: Actor, *, serial: str, org_code: str, resident_key: bool = False
) -> CeremonyStart:
    """Options for ``navigator.credentials.create`` for a card in one organisation."""
    now = rt.clock()
    with transaction(rt.db) as session:
        forget_expired(session, now)
        card, org = _card_in_org(session, serial, org_code)
        require_allowed(org)
        person = session.get(Person, card.person_id)
        assert person is not None
        existing = [stored_credential(a) for a in active_keys(session, card.id, org.id)]
        options, state = webauthn.begin_registration(
            policy_for(rt.settings, org),
            user_handle=user_handle(card.id, org.id),
            user_name=person.email or person.user_id,
            display_name=person.common_name,
            existing=existing,
            resident_key=resident_key,
        )
        row = WebAuthnCeremony(
            id=new_id(),
            kind=REGISTRATION,
            state=state,
            organisation_id=org.id,
            card_id=card.id,
            created_by=actor.ref,
            details={"resident_key": resident_key},
            created_at=now,
            expires_at=ceremony_expiry(rt.settings, now),
        )
        session.add(row)
    return CeremonyStart(ceremony_id=row.id, options=options, expires_at=row.expires_at)


def complete_registration(
    rt: Runtime, actor: Actor, *, ceremony_id: str, response: Mapping[str, JsonValue], nickname: str
) -> MethodView:
    """Verify the key's ``create()`` response and associate the credential with the card."""
    failure: CardvaultError | None = None
    with transaction(rt.db) as session:
        row: WebAuthnCeremony | None = None
        try:
            row = claim(session, ceremony_id, REGISTRATION, rt.clock(), created_by=actor.ref)
            return MethodView.of(_register(session, rt, actor, row, response, nickname))
        except CardvaultError as exc:
            if row is not None and row.status == "answered":
                row.status = "failed"
            known = row or session.get(WebAuthnCeremony, ceremony_id[:36])
            if known is not None and known.created_by != actor.ref:
                known = None  # someone else's request: audit it on the service's chain
            row = known
            audit_failure(
                session,
                rt,
                actor,
                exc,
                action=AuditAction.SECURITY_KEY_REGISTRATION,
                assoc=None,
                org_id=row.organisation_id if row else None,
                card_id=row.card_id if row else None,
                details={"ceremony": ceremony_id[:36]},
            )
            failure = exc
    assert failure is not None
    raise failure


def _register(
    session: Session,
    rt: Runtime,
    actor: Actor,
    row: WebAuthnCeremony,
    response: Mapping[str, JsonValue],
    nickname: str,
) -> Association:
    org = session.get(Organisation, row.organisation_id)
    card = session.get(Card, row.card_id)
    assert org is not None and card is not None
    require_allowed(org)
    if card.status == CardStatus.REVOKED:
        raise Conflict(f"Card {card.serial} is revoked.")
    cred = webauthn.complete_registration(
        policy_for(rt.settings, org), row.state, response, nickname=nickname
    )
    assoc = _new_association(row, org, card, cred, actor)
    insert_unique(
        session,
        assoc,
        "This security key is already registered in this organisation.",
        field="credential",
    )
    row.status, row.association_id = "consumed", assoc.id
    audit_added(
        session,
        rt,
        actor,
        card,
        assoc,
        {
            "association": assoc.id,
            "nickname": assoc.label,
            "aaguid": cred.aaguid,
            "authenticator": assoc.details["authenticator"],
        },
    )
    # the holder hears of every new key: one added behind their back is an alarm
    notifications.security_key_added(session, rt, card, assoc.label or "security key")
    return assoc


def _new_association(
    row: WebAuthnCeremony,
    org: Organisation,
    card: Card,
    cred: webauthn.StoredCredential,
    actor: Actor,
) -> Association:
    return Association(
        id=new_id(),
        card_id=card.id,
        organisation_id=org.id,
        method=MethodKind.SECURITY_KEY,
        lookup_key=credential_key(cred.credential_id),
        label=cred.nickname,
        counter=cred.sign_count,
        created_by=actor.ref,
        details={
            "credential_id": b64url(cred.credential_id),
            "credential_data": b64url(cred.credential_data),
            "aaguid": cred.aaguid,
            "authenticator": webauthn.aaguid_name(cred.aaguid) or "Security key",
            "user_handle": b64url(cred.user_handle),
            "resident_key": bool(row.details.get("resident_key")),
        },
    )


def _card_in_org(session: Session, serial: str, org_code: str) -> tuple[Card, Organisation]:
    org = get_org(session, org_code)
    card = get_card(session, serial, organisation_id=org.id)
    if card.status == CardStatus.REVOKED:
        raise Conflict(f"Card {card.serial} is revoked.")
    if not is_member(session, card.person_id, org.id):
        raise NotFound(f"There is no card {serial} in {org.code}.")
    return card, org
