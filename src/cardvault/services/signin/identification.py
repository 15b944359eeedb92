"""From what the holder types or presents to a card and an organisation (DESIGN §3.2 step 1).

Resolvers are plug-ins like second factors: email and AD account here; HR card, FIDO2
credential and paired device arrive with their own issues. A resolver returns None when
nothing matches; the engine then answers exactly as for a wrong passcode.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from cardvault.domain import identifiers
from cardvault.domain.vocabulary import CardStatus, MethodStatus, SignInRoute
from cardvault.errors import CardvaultError, InvalidInput
from cardvault.services.security_keys import signin as security_key_signin
from cardvault.services.signin import hr_cards
from cardvault.store.models import AdAccount, Association, Card, Membership, Organisation, Person


@dataclass(frozen=True, kw_only=True)
class Target:
    """The card a sign-in names, its holder and organisation, and where it started."""

    card: Card
    person: Person
    organisation: Organisation
    #: where the sign-in started (what the holder typed or presented)
    route: SignInRoute
    #: the person's organisations, when the resolver read them (a route that names none,
    #: whose sign-in may go to any of them: ``org_choice``); None when not read
    memberships: tuple[Organisation, ...] | None = None


Resolver = Callable[[Session, str, str | None], Target | None]


# Built once with bound parameters: every sign-in resolves its identifier, and SQLAlchemy
# reuses the compiled form of a statement object it has seen (bench/auth.py).
_PERSON_BY_EMAIL = select(Person).where(Person.email == bindparam("email"))
_LIVE_CARD = select(Card).where(
    Card.person_id == bindparam("person_id"), Card.status != CardStatus.REVOKED
)


_MEMBER_ORGS = (
    select(Organisation)
    .join(Membership, Membership.organisation_id == Organisation.id)
    .where(Membership.person_id == bindparam("member"))
)


def _live_card(session: Session, person_id: str) -> Card | None:
    return session.scalar(_LIVE_CARD, {"person_id": person_id})


def _member_orgs(session: Session, person_id: str) -> tuple[Organisation, ...]:
    return tuple(session.scalars(_MEMBER_ORGS, {"member": person_id}))


def _named_org(session: Session, person: Person, org_code: str) -> Organisation | None:
    stmt = _MEMBER_ORGS.where(Organisation.code == identifiers.org_code(org_code))
    return session.scalar(stmt, {"member": person.id})


def by_email(session: Session, value: str, org_code: str | None) -> Target | None:
    """The card a sign-in by email names, or None (looked up as if it existed).

    Without an organisation named, the person's organisations are read at once (one
    query, kept in the target for ``org_choice``), the card's own among them."""
    person = session.scalar(_PERSON_BY_EMAIL, {"email": identifiers.email(value)})
    # the card and organisations are looked for even for nobody: an unknown address costs
    # the same reads as a known one (DESIGN §3.3, refusals that look alike)
    card = _live_card(session, person.id if person else "")
    if person is None or card is None:
        _member_orgs(session, "")
        return None
    if org_code:
        org = _named_org(session, person, org_code)
        return (
            Target(card=card, person=person, organisation=org, route=SignInRoute.EMAIL)
            if org
            else None
        )
    orgs = _member_orgs(session, person.id)
    org = next((o for o in orgs if o.id == card.organisation_id), None)
    org = org or session.get(Organisation, card.organisation_id)
    if org is None:
        return None
    return Target(
        card=card, person=person, organisation=org, route=SignInRoute.EMAIL, memberships=orgs
    )


def by_ad_account(session: Session, value: str, org_code: str | None) -> Target | None:
    """The card a ``DOMAIN\\account`` sign-in names, or None."""
    domain, account = identifiers.parse_ad_login(value)
    stmt = (
        select(Association, Organisation)
        .join(AdAccount, AdAccount.association_id == Association.id)
        .join(Organisation, Organisation.id == Association.organisation_id)
        .where(
            AdAccount.domain == domain,
            AdAccount.account == account,
            Association.status == MethodStatus.ACTIVE,
        )
    )
    if org_code:
        stmt = stmt.where(Organisation.code == identifiers.org_code(org_code))
    rows = session.execute(stmt).all()
    if len(rows) != 1:
        return None
    assoc, org = rows[0]
    card = session.get(Card, assoc.card_id)
    person = session.get(Person, card.person_id) if card else None
    if card is None or person is None or card.status == CardStatus.REVOKED:
        return None
    return Target(card=card, person=person, organisation=org, route=SignInRoute.AD_ACCOUNT)


def _association_target(session: Session, assoc: Association, route: SignInRoute) -> Target | None:
    card = session.get(Card, assoc.card_id)
    person = session.get(Person, card.person_id) if card else None
    org = session.get(Organisation, assoc.organisation_id)
    if card is None or person is None or org is None or card.status == CardStatus.REVOKED:
        return None
    return Target(card=card, person=person, organisation=org, route=route)


def by_hr_card(session: Session, value: str, org_code: str | None) -> Target | None:
    """The UID read from an HR card; several organisations need ``org_code`` to choose."""
    rows = hr_cards.associations_for_uid(session, value, org_code)
    return _association_target(session, rows[0], SignInRoute.HR_CARD) if len(rows) == 1 else None


def by_security_key(session: Session, value: str, org_code: str | None) -> Target | None:
    """The proof of a verified security-key sign-in (``security_key_signin``)."""
    row = security_key_signin.proven_ceremony(session, value)
    assoc = session.get(Association, row.association_id) if row and row.association_id else None
    if assoc is None or assoc.status != MethodStatus.ACTIVE:
        return None
    target = _association_target(session, assoc, SignInRoute.SECURITY_KEY)
    if target and org_code and target.organisation.code != identifiers.org_code(org_code):
        return None
    return target


RESOLVERS: dict[str, Resolver] = {
    SignInRoute.EMAIL: by_email,
    SignInRoute.AD_ACCOUNT: by_ad_account,
    SignInRoute.HR_CARD: by_hr_card,
    SignInRoute.SECURITY_KEY: by_security_key,
}


def resolve(session: Session, kind: str, value: str, org_code: str | None) -> Target | None:
    """The card an identifier of this kind names, or None; raises InvalidInput for an
    unknown kind or a malformed identifier."""
    resolver = RESOLVERS.get(kind)
    if resolver is None:
        raise InvalidInput(
            f"Unknown identifier kind {kind!r}; use one of {', '.join(sorted(RESOLVERS))}.",
            field="identifier",
        )
    try:
        return resolver(session, value, org_code)
    except InvalidInput:
        raise
    except CardvaultError:
        return None
