"""Registering a holder's FIDO2 security key from the RA's browser (WebAuthn §7.1).

The RA starts a ceremony for a person of their organisation; the state (challenge, user
handle, excluded credentials) is kept by the caller (the RA's web session) and used once.
The verified credential becomes an ``associations`` row for this organisation:
``method = fido2``, ``lookup_key`` = the credential id (base64url), ``counter`` = the sign
count, and ``details`` = AAGUID, the authenticator's name when known, the credential data
(AAGUID, id, COSE public key; base64) and the user handle (base64url). The FIDO2 sign-in
plug-in reads the same fields (see ``stored_credentials``).

The user handle is the card's id (16 bytes of a UUID): stable for the card, not personal.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardvault.domain import webauthn
from cardvault.domain.org_policy import OrganisationPolicy
from cardvault.errors import InvalidInput
from cardvault.services import audit, methods
from cardvault.services.ra_actions import RaContext
from cardvault.services.ra_persons import card_in_scope
from cardvault.services.runtime import Runtime
from cardvault.store.db import transaction
from cardvault.store.models import Association, Card, MethodKind, Organisation, Person
from cardvault.store.types import new_id


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def policy_for(rt: Runtime, org: Organisation) -> webauthn.WebAuthnPolicy:
    """The relying party as configured (RP ID, origins) with the organisation's rules."""
    base = rt.settings.base_url.rstrip("/")
    rp_id = rt.settings.webauthn_rp_id or (urlsplit(base).hostname or "localhost")
    origins = tuple(rt.settings.webauthn_origins) or (base,)
    policy = OrganisationPolicy.from_dict(org.policy)
    return webauthn.WebAuthnPolicy(
        rp_id=rp_id,
        rp_name="cardvault",
        origins=origins,
        user_verification_required=policy.fido2_user_verification_required,
        allowed_aaguids=(
            frozenset(policy.fido2_allowed_aaguids)
            if policy.fido2_allowed_aaguids is not None
            else None
        ),
        timeout_ms=60000,
    )


def stored_credentials(
    session: Session, card_id: str, org_id: str
) -> list[webauthn.StoredCredential]:
    rows = session.scalars(
        select(Association).where(
            Association.card_id == card_id,
            Association.organisation_id == org_id,
            Association.method == MethodKind.FIDO2.value,
        )
    )
    return [_stored(a) for a in rows]


def _stored(a: Association) -> webauthn.StoredCredential:
    d = a.details
    return webauthn.StoredCredential(
        credential_id=_unb64url(a.lookup_key),
        credential_data=base64.b64decode(d["credential_data"]),
        sign_count=a.counter,
        aaguid=d["aaguid"],
        nickname=a.label or "",
        user_handle=_unb64url(d["user_handle"]),
    )


def begin(rt: Runtime, ctx: RaContext, user_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Options for ``navigator.credentials.create`` and the state to keep until complete."""
    with rt.db() as session:
        card = card_in_scope(session, ctx, user_id)
        person = session.get(Person, card.person_id)
        org = session.get(Organisation, ctx.organisation_id)
        assert person is not None and org is not None
        policy = policy_for(rt, org)
        existing = stored_credentials(session, card.id, org.id)
    options, state = webauthn.begin_registration(
        policy,
        user_handle=uuid.UUID(card.id).bytes,
        user_name=person.email or person.user_id,
        display_name=person.common_name,
        existing=existing,
        resident_key=True,
    )
    state["card_id"] = card.id
    return options, state


def complete(
    rt: Runtime,
    ctx: RaContext,
    user_id: str,
    state: dict[str, Any],
    response: dict[str, Any],
    nickname: str,
) -> Association:
    with rt.db() as session:
        card = card_in_scope(session, ctx, user_id)
        org = session.get(Organisation, ctx.organisation_id)
        assert org is not None
        policy = policy_for(rt, org)
    if state.get("card_id") != card.id:
        raise webauthn.InvalidState("This response does not belong to the request in progress.")
    if not (nickname or "").strip():
        raise InvalidInput("Give the key a name, like 'Blue YubiKey'.", field="nickname")
    stored = webauthn.complete_registration(policy, state, response, nickname=nickname)
    with transaction(rt.db) as session:
        card_row = card_in_scope(session, ctx, user_id)
        assoc = Association(
            id=new_id(),
            card_id=card_row.id,
            organisation_id=ctx.organisation_id,
            method=MethodKind.FIDO2.value,
            lookup_key=_b64url(stored.credential_id),
            label=stored.nickname,
            counter=stored.sign_count,
            details={
                "aaguid": stored.aaguid,
                "authenticator": webauthn.aaguid_name(stored.aaguid),
                "credential_data": base64.b64encode(stored.credential_data).decode(),
                "user_handle": _b64url(stored.user_handle),
            },
            created_by=ctx.actor.ref,
        )
        methods._insert(session, assoc, "This security key")
        _audit(session, rt, ctx, card_row, assoc)
    return assoc


def _audit(session: Session, rt: Runtime, ctx: RaContext, card: Card, assoc: Association) -> None:
    audit.record(
        session,
        rt,
        ctx.actor,
        action="method.added",
        organisation_id=ctx.organisation_id,
        person_id=card.person_id,
        card_id=card.id,
        details={
            "method": assoc.method,
            "label": assoc.label,
            "aaguid": assoc.details.get("aaguid"),
        },
    )
