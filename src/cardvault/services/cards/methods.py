"""Authentication methods associated with a card, per organisation (AD account, TOTP, …).

Each association is unique per organisation and method by its normalised identifier; method
secrets (the TOTP seed) are sealed under the master key, bound to the association's id.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.exc import IntegrityError as DbIntegrityError
from sqlalchemy.orm import Session

from cardvault.crypto.aead import aad
from cardvault.crypto.profile import check_sid
from cardvault.domain import identifiers, totp
from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.vocabulary import CardStatus, MethodKind, MethodStatus
from cardvault.errors import Conflict, NotFound
from cardvault.json_types import JsonObject
from cardvault.keystore.provider import MasterKey
from cardvault.services.audit import trail as audit
from cardvault.services.cards.errors import AlreadyAssociated
from cardvault.services.cards.lookup import get_card
from cardvault.services.cards.views import MethodView, method_summary
from cardvault.services.directory.registry import get_org, is_member
from cardvault.services.notifications import outbox as notifications
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import AdAccount, Association, Card
from cardvault.store.queries import card_rows
from cardvault.store.types import new_id

ISSUER = "cardvault"


@dataclass(frozen=True, kw_only=True)
class TotpProvisioning:
    """A TOTP app being added: the secret and ``otpauth`` URI to show, once."""

    association_id: str
    uri: str
    secret: str


def association_dict(a: MethodView) -> JsonObject:
    """An authentication method as JSON, for the CLI and the API."""
    return {
        **method_summary(a),
        "created_at": a.created_at.isoformat(),
        "last_used_at": a.last_used_at.isoformat() if a.last_used_at else None,
    }


def seal_secret(master: MasterKey, association_id: str, secret: bytes) -> bytes:
    """Seal a method's secret (a TOTP seed) under the master key, bound to the association."""
    return master.seal(secret, aad=aad("association-secret", association_id))


class SealedSecret(Protocol):
    """A method's row or plain value: its id (in the secret's AAD) and the sealed secret."""

    @property
    def id(self) -> str:
        """The method's id."""

    @property
    def sealed_secret(self) -> bytes | None:
        """The secret sealed under the master key, if the method has one."""


def open_secret(master: MasterKey, assoc: SealedSecret) -> bytearray:
    """Open a method's sealed secret; raises NotFound if it has none, SealBroken if altered."""
    if assoc.sealed_secret is None:
        raise NotFound("This method has no secret.")
    return master.open(assoc.sealed_secret, aad=aad("association-secret", assoc.id))


def _card_in_org(session: Session, serial: str, org_code: str) -> tuple[Card, str]:
    org = get_org(session, org_code)
    card = get_card(session, serial, organisation_id=org.id, for_update=True)
    if card.status == CardStatus.REVOKED:
        raise Conflict(f"Card {card.serial} is revoked.")
    if not is_member(session, card.person_id, org.id):
        raise NotFound(f"There is no card {serial} in {org.code}.")
    return card, org.id


def insert_unique(session: Session, row: object, message: str, *, field: str) -> None:
    """Add a method's row in a savepoint; a unique constraint it breaks (the identifier is
    taken in this organisation) becomes AlreadyAssociated and the caller's transaction goes on."""
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except DbIntegrityError as exc:
        raise AlreadyAssociated(message, field=field) from exc


def audit_added(
    session: Session, rt: Runtime, actor: Actor, card: Card, assoc: Association, details: JsonObject
) -> None:
    """The one ``method.added`` event, on the chain of the organisation the method is for."""
    audit.record_for_card(
        session,
        rt,
        actor,
        card,
        action=AuditAction.METHOD_ADDED,
        organisation_id=assoc.organisation_id,
        details={"method": assoc.method, **details},
    )


def _insert(session: Session, assoc: Association, what: str) -> None:
    insert_unique(
        session,
        assoc,
        f"{what} is already associated with a card in this organisation.",
        field="identifier",
    )


def add_ad_account(
    rt: Runtime,
    actor: Actor,
    *,
    serial: str,
    org_code: str,
    account: str,
    sid: str | None = None,
) -> MethodView:
    r"""Associate ``DOMAIN\name`` with the card in one organisation (unique there); ``sid``,
    the account's Windows SID, goes into certificates issued from then on (DESIGN §3.9)."""
    domain, name = identifiers.parse_ad_login(account)
    sid = (sid or "").strip() or None
    if sid is not None:
        check_sid(sid)
    with transaction(rt.db) as session:
        card, org_id = _card_in_org(session, serial, org_code)
        assoc = Association(
            id=new_id(),
            card_id=card.id,
            organisation_id=org_id,
            method=MethodKind.AD_ACCOUNT,
            lookup_key=f"{domain}\\{name}",
            label=f"{domain}\\{name}",
            created_by=actor.ref,
        )
        _insert(session, assoc, f"The AD account {domain}\\{name}")
        _insert_ad_row(session, assoc, org_id, domain, name, sid)
        audit_added(session, rt, actor, card, assoc, {"identifier": assoc.lookup_key})
        return MethodView.of(assoc)


def _insert_ad_row(
    session: Session, assoc: Association, org_id: str, domain: str, name: str, sid: str | None
) -> None:
    insert_unique(
        session,
        AdAccount(
            association_id=assoc.id, organisation_id=org_id, domain=domain, account=name, sid=sid
        ),
        f"The AD account {domain}\\{name} is already associated with a card in this organisation.",
        field="identifier",
    )


def add_totp(
    rt: Runtime,
    actor: Actor,
    *,
    serial: str,
    org_code: str,
    label: str = "Authenticator app",
    confirmed: bool = True,
) -> TotpProvisioning:
    """A fresh TOTP secret for the card, sealed; returns the otpauth:// URI to show once."""
    secret = totp.new_secret()
    with transaction(rt.db) as session:
        card, org_id = _card_in_org(session, serial, org_code)
        assoc_id = new_id()
        assoc = Association(
            id=assoc_id,
            card_id=card.id,
            organisation_id=org_id,
            method=MethodKind.TOTP,
            lookup_key=assoc_id,
            label=label,
            sealed_secret=seal_secret(rt.master_key, assoc_id, secret.encode()),
            status=MethodStatus.ACTIVE if confirmed else MethodStatus.PENDING,
            created_by=actor.ref,
        )
        _insert(session, assoc, "This authenticator")
        audit_added(session, rt, actor, card, assoc, {"label": label})
    uri = totp.provisioning_uri(secret, account=card.serial, issuer=ISSUER)
    return TotpProvisioning(association_id=assoc_id, uri=uri, secret=secret)


def list_methods(
    rt: Runtime, serial: str, *, organisation_id: str | None = None
) -> list[MethodView]:
    """A card's methods (in one organisation, when given), oldest first; NotFound."""
    with rt.db() as session:
        card = get_card(session, serial, organisation_id=organisation_id)
        rows = card_rows.of_card(session, Association, card.id, organisation_id)
        return [MethodView.of(a) for a in rows]


def remove_method(
    rt: Runtime,
    actor: Actor,
    association_id: str,
    *,
    organisation_id: str | None = None,
    card_id: str | None = None,
    also: Callable[[Session, Card, MethodView], object] | None = None,
) -> MethodView:
    """Remove a method (audited; the holder hears of a removed security key); NotFound.

    ``card_id`` limits it to one card's methods (a holder's own); ``also`` runs in the
    same transaction (the holder's RAs are told)."""
    with transaction(rt.db) as session:
        assoc = card_rows.in_scope_for_update(
            session, Association, association_id, organisation_id=organisation_id, card_id=card_id
        )
        if assoc is None:
            raise NotFound("There is no such authentication method.")
        card = session.get(Card, assoc.card_id)
        assert card is not None
        removed = remove_in_session(session, rt, actor, card, assoc)
        if also is not None:
            also(session, card, removed)
    return removed


def remove_in_session(
    session: Session, rt: Runtime, actor: Actor, card: Card, assoc: Association
) -> MethodView:
    """Remove one method of ``card`` in the caller's transaction (audited; the holder hears
    of a removed security key): a leaver's methods go in the same unit as the rest."""
    removed = MethodView.of(assoc)
    session.delete(assoc)
    audit.record_for_card(
        session,
        rt,
        actor,
        card,
        action=AuditAction.METHOD_REMOVED,
        organisation_id=assoc.organisation_id,
        details={"method": assoc.method, "identifier": assoc.lookup_key},
    )
    if assoc.method == MethodKind.SECURITY_KEY:  # the holder hears of it (a stolen key?)
        notifications.security_key_removed(session, rt, card, assoc.label or "security key")
    return removed
