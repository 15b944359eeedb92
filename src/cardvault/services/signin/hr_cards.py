"""HR cards (staff ID cards with a contactless chip) as a way to say who is signing in.

A card's UID is read by any contactless reader, by anyone, from a few centimetres: it
is an **identifier, not a secret**. A sign-in that starts from an HR card is worth the
passcode and the fact that someone tapped a card carrying that UID (which a cheap
"magic" card can copy). The organisation decides whether that is enough for it
(``hr_cards_allowed`` and ``hr_card`` in ``allowed_methods``); docs/user/hr-cards.md says so.

A UID is associated with one card per organisation (normalised upper-case hex, unique
by the associations table's constraint).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardvault.domain import identifiers
from cardvault.domain.vocabulary import CardStatus, MethodKind, MethodStatus
from cardvault.errors import Conflict, NotFound
from cardvault.services.cards.lookup import get_card
from cardvault.services.cards.methods import audit_added, insert_unique
from cardvault.services.cards.views import MethodView
from cardvault.services.directory.registry import get_org, is_member
from cardvault.services.signin.errors import HrCardsNotAllowed
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import Association, Card, Organisation
from cardvault.store.queries.organisations import policy_of
from cardvault.store.types import new_id


def label_for(uid: str) -> str:
    """What RAs see: enough of the UID to tell two cards apart."""
    return f"HR card …{uid[-6:]}"


def add_hr_card(
    rt: Runtime, actor: Actor, *, serial: str, org_code: str, uid: str, label: str | None = None
) -> MethodView:
    """Associate an HR card's UID with the card in one organisation (unique there)."""
    normal = identifiers.hr_card_uid(uid)
    with transaction(rt.db) as session:
        org = get_org(session, org_code)
        if not policy_of(org).allows(MethodKind.HR_CARD):
            raise HrCardsNotAllowed(f"{org.name} does not allow sign-in with HR cards.")
        card = _card_in(session, serial, org)
        assoc = Association(
            id=new_id(),
            card_id=card.id,
            organisation_id=org.id,
            method=MethodKind.HR_CARD,
            lookup_key=normal,
            label=(label or "").strip()[:100] or label_for(normal),
            created_by=actor.ref,
            details={"uid_bytes": len(normal) // 2},
        )
        insert_unique(
            session,
            assoc,
            "This HR card is already associated with a card in this organisation.",
            field="uid",
        )
        audit_added(
            session, rt, actor, card, assoc, {"association": assoc.id, "label": assoc.label}
        )
        return MethodView.of(assoc)


def _card_in(session: Session, serial: str, org: Organisation) -> Card:
    card = get_card(session, serial, organisation_id=org.id, for_update=True)
    if card.status == CardStatus.REVOKED:
        raise Conflict(f"Card {card.serial} is revoked.")
    if not is_member(session, card.person_id, org.id):
        raise NotFound(f"There is no card {serial} in {org.code}.")
    return card


def associations_for_uid(session: Session, uid: str, org_code: str | None) -> list[Association]:
    """The live associations of a UID (in one organisation, when its code is given)."""
    stmt = select(Association).where(
        Association.method == MethodKind.HR_CARD,
        Association.lookup_key == identifiers.hr_card_uid(uid),
        Association.status == MethodStatus.ACTIVE,
    )
    if org_code:
        stmt = stmt.join(Organisation, Organisation.id == Association.organisation_id).where(
            Organisation.code == identifiers.org_code(org_code)
        )
    return list(session.scalars(stmt))
