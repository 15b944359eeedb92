"""Authentication methods an RA associates with a person's card, for their organisation only.

AD accounts and HR card UIDs are unique per organisation (a database constraint, so two
RAs racing cannot both win). A TOTP authenticator starts ``pending`` and becomes ``active``
only when the holder types one current code from it; that code's time step is stored as
used, so it cannot then sign anyone in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cardvault.domain import identifiers, totp
from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.vocabulary import CardStatus, MethodKind, MethodStatus
from cardvault.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from cardvault.services.cards import methods
from cardvault.services.cards.errors import AlreadyAssociated
from cardvault.services.cards.views import MethodView
from cardvault.services.devices import pairing
from cardvault.services.ra.actions import RaContext
from cardvault.services.ra.persons import card_in_scope
from cardvault.services.system.runtime import Runtime
from cardvault.store.db import transaction
from cardvault.store.models import Association, Card, Organisation
from cardvault.store.queries.organisations import policy_of
from cardvault.store.types import new_id

MAX_LABEL = 100


@dataclass(frozen=True, kw_only=True)
class PendingTotp:
    """A TOTP app being added by the RA: what to show until its first code confirms it."""

    association_id: str
    uri: str = ""
    secret: str = ""
    label: str = ""


def _label(text: str, default: str) -> str:
    cleaned = " ".join((text or "").split()) or default
    if len(cleaned) > MAX_LABEL:
        raise InvalidInput(f"The name must be at most {MAX_LABEL} characters.", field="label")
    return cleaned


def _usable_serial(rt: Runtime, ctx: RaContext, user_id: str) -> str:
    with rt.db() as session:
        card = card_in_scope(session, ctx, user_id)
    if card.status == CardStatus.REVOKED:
        raise Conflict(f"Card {card.serial} is revoked.")
    return card.serial


def add_ad_account(
    rt: Runtime, ctx: RaContext, user_id: str, account: str, sid: str | None = None
) -> MethodView:
    r"""Associate ``DOMAIN\name`` (and its SID) with the person's card here; InvalidInput,
    AlreadyAssociated."""
    serial = _usable_serial(rt, ctx, user_id)
    try:
        return methods.add_ad_account(
            rt, ctx.actor, serial=serial, org_code=ctx.organisation_code, account=account, sid=sid
        )
    except InvalidInput as exc:
        field = "sid" if exc.field == "sid" else "account"
        raise InvalidInput(exc.message, field=field) from None
    except AlreadyAssociated as exc:
        raise AlreadyAssociated(exc.message, field="account") from None


def start_totp(rt: Runtime, ctx: RaContext, user_id: str, label: str) -> PendingTotp:
    """Start adding a TOTP app: the secret and QR code to show; confirmed by a first code."""
    serial = _usable_serial(rt, ctx, user_id)
    prov = methods.add_totp(
        rt,
        ctx.actor,
        serial=serial,
        org_code=ctx.organisation_code,
        label=_label(label, "Authenticator app"),
        confirmed=False,
    )
    return PendingTotp(association_id=prov.association_id, uri=prov.uri, secret=prov.secret)


def _association(session: Any, ctx: RaContext, user_id: str, association_id: str) -> Association:
    card = card_in_scope(session, ctx, user_id, live=False)
    assoc = session.get(Association, association_id)
    if assoc is None or assoc.card_id != card.id or assoc.organisation_id != ctx.organisation_id:
        raise NotFound("There is no such authentication method.")
    assert isinstance(assoc, Association)
    return assoc


def pending_totp(rt: Runtime, ctx: RaContext, user_id: str, association_id: str) -> PendingTotp:
    """The QR code's contents again, while the authenticator is not yet confirmed."""
    with rt.db() as session:
        assoc = _association(session, ctx, user_id, association_id)
        card = card_in_scope(session, ctx, user_id)
        if assoc.method != MethodKind.TOTP or assoc.status != MethodStatus.PENDING:
            raise Conflict("This authenticator is already confirmed.")
        secret = methods.open_secret(rt.master_key, assoc)
        try:
            text = secret.decode()
        finally:
            secret[:] = bytes(len(secret))
    uri = totp.provisioning_uri(text, account=card.serial, issuer=methods.ISSUER)
    return PendingTotp(association_id=assoc.id, uri=uri, secret=text, label=assoc.label or "")


def confirm_totp(
    rt: Runtime, ctx: RaContext, user_id: str, association_id: str, code: str
) -> MethodView:
    """Activate a pending authenticator with one current code (which is then used up)."""
    with transaction(rt.db) as session:
        assoc = _association(session, ctx, user_id, association_id)
        session.refresh(assoc, with_for_update=True)
        if assoc.method != MethodKind.TOTP or assoc.status != MethodStatus.PENDING:
            raise Conflict("This authenticator is already confirmed.")
        org = session.get(Organisation, ctx.organisation_id)
        assert org is not None
        window = policy_of(org).totp_window
        secret = methods.open_secret(rt.master_key, assoc)
        try:
            step = totp.matching_step(
                secret.decode(),
                code,
                now=rt.clock().timestamp(),
                params=totp.TotpParams(window=window),
            )
        except totp.TotpWrong:
            raise InvalidInput(
                "The code is not right. Check the phone's clock and type the newest code.",
                field="code",
            ) from None
        finally:
            secret[:] = bytes(len(secret))
        assoc.status, assoc.counter = MethodStatus.ACTIVE, max(assoc.counter, step)
        _audit(session, rt, ctx, assoc, AuditAction.METHOD_CONFIRMED)
        return MethodView.of(assoc)


def add_hr_card(rt: Runtime, ctx: RaContext, user_id: str, uid: str, label: str) -> MethodView:
    """Associate an HR card's UID with the person's card here; PermissionDenied when the
    organisation does not allow HR cards, AlreadyAssociated, InvalidInput."""
    uid_norm = identifiers.hr_card_uid(uid)
    with transaction(rt.db) as session:
        org = session.get(Organisation, ctx.organisation_id)
        assert org is not None
        if not policy_of(org).hr_cards_allowed:
            raise PermissionDenied("Your organisation does not allow HR cards for sign-in.")
        card = card_in_scope(session, ctx, user_id)
        assoc = Association(
            id=new_id(),
            card_id=card.id,
            organisation_id=ctx.organisation_id,
            method=MethodKind.HR_CARD,
            lookup_key=uid_norm,
            label=_label(label, "HR card"),
            created_by=ctx.actor.ref,
        )
        try:
            methods._insert(session, assoc, f"The HR card {uid_norm}")
        except AlreadyAssociated as exc:
            raise AlreadyAssociated(exc.message, field="uid") from None
        _audit(session, rt, ctx, assoc, AuditAction.METHOD_ADDED, identifier=uid_norm)
        return MethodView.of(assoc)


def remove(rt: Runtime, ctx: RaContext, user_id: str, association_id: str) -> MethodView:
    """Remove one of the person's methods in this organisation (audited); NotFound."""
    with rt.db() as session:
        _association(session, ctx, user_id, association_id)
    return methods.remove_method(rt, ctx.actor, association_id, organisation_id=ctx.organisation_id)


def association(rt: Runtime, ctx: RaContext, user_id: str, association_id: str) -> MethodView:
    """One of the person's methods in this organisation; NotFound."""
    with rt.db() as session:
        return MethodView.of(_association(session, ctx, user_id, association_id))


def _audit(
    session: Any,
    rt: Runtime,
    ctx: RaContext,
    assoc: Association,
    action: AuditAction,
    identifier: str | None = None,
) -> None:
    card = session.get(Card, assoc.card_id)
    ctx.audit_act(
        session,
        rt,
        action,
        person_id=card.person_id if card else None,
        card_id=assoc.card_id,
        details={"method": assoc.method, "label": assoc.label}
        | ({"identifier": identifier} if identifier else {}),
    )


# --- device pairing (the device-protocol issue provides the service) ------------------


@dataclass(frozen=True, kw_only=True)
class PairingOffer:
    """A pairing code for the holder's phone: the URI the QR code shows, and its expiry."""

    uri: str
    expires_at: Any


def pairing_offer(
    rt: Runtime, ctx: RaContext, user_id: str, application: str
) -> PairingOffer | None:
    """A single-use pairing QR for the card, shown to the holder's phone.

    The phone says at pairing whether it pairs as the authenticator app or as the mobile
    identity agent (``application``), so the same pairing code serves both pages.
    """
    serial = _usable_serial(rt, ctx, user_id)
    offer = pairing.create_pairing(rt, ctx.actor, serial=serial, org_code=ctx.organisation_code)
    return PairingOffer(uri=offer.uri, expires_at=offer.expires_at)
