"""FIDO2 security keys as an authentication method (DESIGN §3.2): registration and the
checks every sign-in with a key shares.

A key's credential is an association (method ``fido2``) of a card in one organisation:
``lookup_key`` is the SHA-256 of the credential id (ids may be up to 1023 bytes),
``details`` keep the public credential data, the AAGUID, the model name and the user
handle, ``counter`` the last sign count, ``label`` the nickname people see.

``domain.webauthn`` verifies the ceremonies; this module adds the organisation's policy
(security keys allowed at all, user verification, allowed models), keeps ceremony
state server-side with an expiry, and advances the sign counter atomically, so that of
two assertions racing with the same count only one can win.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from cardvault import json_types
from cardvault.config import Settings
from cardvault.domain import webauthn
from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.org_policy import OrganisationPolicy
from cardvault.domain.vocabulary import MethodKind, MethodStatus
from cardvault.errors import CardvaultError
from cardvault.json_types import JsonObject, JsonValue
from cardvault.services.audit import trail as audit
from cardvault.services.security_keys.errors import SecurityKeysNotAllowed
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import Association, Card, Organisation, WebAuthnCeremony
from cardvault.store.queries import card_rows
from cardvault.store.queries.organisations import policy_of

RP_NAME = "cardvault"
#: time beyond the browser's own timeout before a begun ceremony is forgotten
CEREMONY_GRACE = timedelta(seconds=60)
REGISTRATION = "registration"
ASSERTION = "assertion"


@dataclass(frozen=True, kw_only=True)
class CeremonyStart:
    """What the browser or agent needs to call the security key."""

    ceremony_id: str
    options: JsonObject
    expires_at: datetime


@dataclass(frozen=True, kw_only=True)
class VerifiedKey:
    """A security key whose assertion verified, and the association it matched."""

    association: Association
    result: webauthn.AssertionResult


# --- encoding and policy ---------------------------------------------------------------


def b64url(raw: bytes) -> str:
    """Base64url without padding, as WebAuthn writes it."""
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def unb64url(text: str) -> bytes:
    """Read base64url with or without padding; raises MalformedResponse."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError, TypeError) as exc:
        raise webauthn.MalformedResponse("The security key's response could not be read.") from exc


def credential_key(credential_id: bytes) -> str:
    """The association's lookup key for a credential id: fixed length, unique per id."""
    return hashlib.sha256(credential_id).hexdigest()


def user_handle(card_id: str, organisation_id: str) -> bytes:
    """The WebAuthn user handle (§5.4.3): opaque, no personal data, one per card and
    organisation, so that a key registered in two organisations keeps both credentials."""
    return hashlib.sha256(f"cardvault/user-handle|{card_id}|{organisation_id}".encode()).digest()[
        :16
    ]


def policy_for(settings: Settings, org: Organisation | None) -> webauthn.WebAuthnPolicy:
    """The relying-party policy in one organisation (or, before one is known, the strict
    default: user verification required, any model)."""
    pol = policy_of(org)
    aaguids = pol.fido2_allowed_aaguids
    return webauthn.WebAuthnPolicy(
        rp_id=settings.rp_id,
        rp_name=RP_NAME,
        origins=settings.rp_origins,
        user_verification_required=pol.fido2_user_verification_required,
        allowed_aaguids=None if aaguids is None else frozenset(a.lower() for a in aaguids),
        timeout_ms=settings.webauthn_timeout_ms,
    )


def require_allowed(org: Organisation) -> OrganisationPolicy:
    """The organisation's policy if it allows security keys; raises SecurityKeysNotAllowed."""
    pol = policy_of(org)
    if not pol.allows(MethodKind.SECURITY_KEY):
        raise SecurityKeysNotAllowed(f"{org.name} does not allow security keys.")
    return pol


def ceremony_expiry(settings: Settings, now: datetime) -> datetime:
    """When a registration or sign-in ceremony started now expires."""
    return now + timedelta(milliseconds=settings.webauthn_timeout_ms) + CEREMONY_GRACE


# --- the credentials of a card ---------------------------------------------------------


def stored_credential(assoc: Association) -> webauthn.StoredCredential:
    """The stored credential of a security-key association, for verification."""
    d = assoc.details
    return webauthn.StoredCredential(
        credential_id=unb64url(json_types.text(d, "credential_id")),
        credential_data=unb64url(json_types.text(d, "credential_data")),
        sign_count=assoc.counter,
        aaguid=json_types.text(d, "aaguid"),
        nickname=assoc.label or "security key",
        user_handle=unb64url(json_types.text(d, "user_handle")),
    )


# Built once: every sign-in asks whether the card has a security key (the engine's offers),
# and SQLAlchemy reuses the compiled form of a statement object it has seen.
_ACTIVE_KEYS = card_rows.active_methods(MethodKind.SECURITY_KEY)


def active_keys(session: Session, card_id: str, organisation_id: str) -> list[Association]:
    """The card's security keys in this organisation."""
    return list(session.scalars(_ACTIVE_KEYS, {"card": card_id, "organisation": organisation_id}))


def keys_by_credential(
    session: Session, credential_id: bytes, organisation_id: str | None
) -> list[Association]:
    """The associations holding this credential id (in one organisation, if given)."""
    stmt = select(Association).where(
        Association.method == MethodKind.SECURITY_KEY,
        Association.lookup_key == credential_key(credential_id),
        Association.status == MethodStatus.ACTIVE,
    )
    if organisation_id is not None:
        stmt = stmt.where(Association.organisation_id == organisation_id)
    return list(session.scalars(stmt))


def raw_id(response: Mapping[str, JsonValue]) -> bytes:
    """The credential id of an assertion; raises MalformedResponse."""
    value = response.get("rawId", response.get("id"))
    if not isinstance(value, str) or not 1 <= len(value) <= 1400:
        raise webauthn.MalformedResponse("The security key's response has no credential id.")
    return unb64url(value)


# --- verification shared by every sign-in path ---------------------------------------


def verify_assertion(
    session: Session,
    settings: Settings,
    *,
    org: Organisation,
    state: JsonObject,
    candidates: Sequence[Association],
    response: Mapping[str, JsonValue],
    now: datetime,
) -> VerifiedKey:
    """Check an assertion against the organisation's policy and advance the counter.

    Raises the ``domain.webauthn`` errors (and SecurityKeysNotAllowed); ``state`` is used
    up whatever the outcome, and nothing else changes unless it verifies.
    """
    pol = require_allowed(org)
    creds = [stored_credential(a) for a in candidates]
    result = webauthn.complete_assertion(policy_for(settings, org), state, creds, response)
    key = credential_key(result.credential_id)
    assoc = next(a for a in candidates if a.lookup_key == key)
    if pol.fido2_user_verification_required and not result.user_verified:
        raise webauthn.UserVerificationMissing(
            f"{org.name} requires the security key's PIN (or fingerprint).",
            remedy="Set a PIN on the key and enter it when asked.",
        )
    _check_model(pol, assoc, org)
    _advance_counter(session, assoc, result.new_sign_count, now)
    return VerifiedKey(association=assoc, result=result)


def _check_model(pol: OrganisationPolicy, assoc: Association, org: Organisation) -> None:
    """The allow-list may have changed since the key was registered."""
    allowed = pol.fido2_allowed_aaguids
    aaguid = str(assoc.details.get("aaguid", ""))
    if allowed is not None and aaguid not in {a.lower() for a in allowed}:
        name = assoc.details.get("authenticator") or "This security key model"
        raise webauthn.AuthenticatorNotAllowed(
            f"{name} is no longer allowed in {org.name}.", aaguid=aaguid
        )


def _advance_counter(session: Session, assoc: Association, new: int, now: datetime) -> None:
    """Compare-and-set: a counter that another sign-in has already moved past ``new``
    is a regression too (two keys answering with the same credential)."""
    stmt = update(Association).where(Association.id == assoc.id)
    if new or assoc.counter:
        stmt = stmt.where(Association.counter < new)
    won = session.scalar(
        stmt.values(counter=new, last_used_at=now)
        .returning(Association.id)
        .execution_options(synchronize_session=False)
    )
    if won is None:
        raise webauthn.SignCounterRegression(
            "This security key's counter went backwards: it may have been cloned.",
            remedy="Use another key and ask your RA to check this one.",
            received=new,
        )
    assoc.counter, assoc.last_used_at = new, now


def audit_failure(
    session: Session,
    rt: Runtime,
    actor: Actor,
    exc: CardvaultError,
    *,
    action: AuditAction,
    assoc: Association | None,
    org_id: str | None,
    details: JsonObject,
    card_id: str | None = None,
) -> None:
    """A refused key use, with its reason; a counter regression is also flagged on its own."""
    card_id = assoc.card_id if assoc is not None else card_id
    card = session.get(Card, card_id) if card_id else None
    info = {**details, "code": exc.code}
    if assoc is not None:
        info.update(association=assoc.id, nickname=assoc.label)
    audit.record(
        session,
        rt,
        actor,
        action=action,
        outcome="failure",
        reason=exc.message,
        organisation_id=org_id,
        person_id=card.person_id if card else None,
        card_id=card.id if card else None,
        details=info,
    )
    audit_clone(session, rt, actor, exc, assoc=assoc, org_id=org_id, details=info)


def audit_clone(
    session: Session,
    rt: Runtime,
    actor: Actor,
    exc: CardvaultError,
    *,
    assoc: Association | None,
    org_id: str | None,
    details: JsonObject,
) -> None:
    """A counter regression gets an event of its own, so that RAs can search for it."""
    if not isinstance(exc, webauthn.SignCounterRegression) or assoc is None:
        return
    card = session.get(Card, assoc.card_id)
    audit.record(
        session,
        rt,
        actor,
        action=AuditAction.SECURITY_KEY_CLONE_SUSPECTED,
        outcome="failure",
        reason="sign counter did not increase: the credential may exist on a cloned key",
        organisation_id=org_id,
        person_id=card.person_id if card else None,
        card_id=assoc.card_id,
        details={
            **details,
            "association": assoc.id,
            "nickname": assoc.label,
            "stored_counter": assoc.counter,
            "received_counter": exc.received,
        },
    )


# --- ceremony rows ---------------------------------------------------------------------


def claim(
    session: Session,
    ceremony_id: str,
    kind: str,
    now: datetime,
    *,
    created_by: str | None = None,
) -> WebAuthnCeremony:
    """The pending ceremony, locked and marked answered: each is answered once.

    Raised errors roll the caller's transaction back, which leaves nothing changed."""
    row = session.get(WebAuthnCeremony, ceremony_id[:36], with_for_update=True)
    if row is None or row.kind != kind or (created_by and row.created_by != created_by):
        raise webauthn.InvalidState("This security key request is unknown; start again.")
    if row.status != "pending":
        raise webauthn.StateReplayed("This security key request was already answered.")
    if now >= row.expires_at:
        raise webauthn.InvalidState("This security key request has expired; start again.")
    row.status = "answered"
    return row


def forget_expired(session: Session, now: datetime) -> None:
    """Ceremonies and proofs past their expiry are useless: each begin clears them, so
    that the table stays as small as the rate of sign-ins times a few minutes."""
    session.execute(delete(WebAuthnCeremony).where(WebAuthnCeremony.expires_at <= now))


def purge_ceremonies(rt: Runtime) -> None:
    """The maintenance job: the same clean-up, for when nobody begins anything."""
    with transaction(rt.db) as session:
        forget_expired(session, rt.clock())
