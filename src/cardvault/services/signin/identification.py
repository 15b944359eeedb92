"""From what the holder types or presents to a card and an organisation (DESIGN §3.2 step 1).

Resolvers are plug-ins like second factors: email and AD account here; HR card, FIDO2
credential and paired device arrive with their own issues. A resolver returns None when
nothing matches; the engine then answers exactly as for a wrong passcode.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from cardvault.domain import identifiers
from cardvault.domain.vocabulary import CardStatus, MethodStatus, SignInRoute
from cardvault.errors import CardvaultError, InvalidInput
from cardvault.services.security_keys import signin as security_key_signin
from cardvault.services.signin import hr_cards
from cardvault.store.models import (
    AdAccount,
    Association,
    Card,
    Membership,
    Organisation,
    Person,
    table_of,
)
from cardvault.store.queries.organisations import ROW_COLUMNS, AnyOrg, OrganisationRow
from cardvault.store.queries.rows import CardRow, columns_of


@dataclass(frozen=True, kw_only=True)
class Target:
    """The card a sign-in names, its holder and organisation, and where it started.

    The email route (every agent's sign-in) reads the card and organisations as plain rows
    with Core; the other routes as ORM objects. Either is only read: the sign-in's writes
    go through their own statements (``card_queries``)."""

    card: Card | CardRow
    person_id: str
    organisation: AnyOrg
    #: where the sign-in started (what the holder typed or presented)
    route: SignInRoute
    #: the person's organisations, when the resolver read them (a route that names none,
    #: whose sign-in may go to any of them: ``org_choice``); None when not read
    memberships: tuple[AnyOrg, ...] | None = None


Resolver = Callable[[Session, str, str | None], Target | None]


# Built once with bound parameters: every sign-in resolves its identifier, and SQLAlchemy
# reuses the compiled form of a statement object it has seen (bench/auth.py). Plain columns
# on the tables, run on the session's connection: no ORM object is built (issue 16).
_PERSONS, _CARDS, _MEMBERS = table_of(Person), table_of(Card), table_of(Membership)
_ORGS = table_of(Organisation)
_PERSON_BY_EMAIL = select(_PERSONS.c.id).where(_PERSONS.c.email == bindparam("email"))
_LIVE_CARD = select(*columns_of(_CARDS, CardRow)).where(
    _CARDS.c.person_id == bindparam("person_id"), _CARDS.c.status != CardStatus.REVOKED
)
_MEMBER_ORGS = (
    select(*ROW_COLUMNS)
    .join(_MEMBERS, _MEMBERS.c.organisation_id == _ORGS.c.id)
    .where(_MEMBERS.c.person_id == bindparam("member"))
)
_ORG_BY_ID = select(*ROW_COLUMNS).where(_ORGS.c.id == bindparam("org_id"))


def _live_card(conn: Connection, person_id: str) -> CardRow | None:
    row = conn.execute(_LIVE_CARD, {"person_id": person_id}).first()
    return None if row is None else CardRow(*row)


def _member_orgs(conn: Connection, person_id: str) -> tuple[OrganisationRow, ...]:
    return tuple(OrganisationRow(*r) for r in conn.execute(_MEMBER_ORGS, {"member": person_id}))


def _named_org(conn: Connection, person_id: str, org_code: str) -> OrganisationRow | None:
    stmt = _MEMBER_ORGS.where(_ORGS.c.code == identifiers.org_code(org_code))
    row = conn.execute(stmt, {"member": person_id}).first()
    return None if row is None else OrganisationRow(*row)


def by_email(session: Session, value: str, org_code: str | None) -> Target | None:
    """The card a sign-in by email names, or None (looked up as if it existed).

    Without an organisation named, the person's organisations are read at once (one
    query, kept in the target for ``org_choice``), the card's own among them."""
    conn = session.connection()
    person_id = conn.scalar(_PERSON_BY_EMAIL, {"email": identifiers.email(value)})
    # the card and organisations are looked for even for nobody: an unknown address costs
    # the same reads as a known one (DESIGN §3.3, refusals that look alike)
    card = _live_card(conn, person_id or "")
    if person_id is None or card is None:
        _member_orgs(conn, "")
        return None
    if org_code:
        org = _named_org(conn, person_id, org_code)
        return (
            Target(card=card, person_id=person_id, organisation=org, route=SignInRoute.EMAIL)
            if org
            else None
        )
    orgs = _member_orgs(conn, person_id)
    org = next((o for o in orgs if o.id == card.organisation_id), None)
    if org is None:
        found = conn.execute(_ORG_BY_ID, {"org_id": card.organisation_id}).first()
        org = None if found is None else OrganisationRow(*found)
    if org is None:
        return None
    route = SignInRoute.EMAIL
    return Target(card=card, person_id=person_id, organisation=org, route=route, memberships=orgs)


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
    return Target(card=card, person_id=person.id, organisation=org, route=SignInRoute.AD_ACCOUNT)


def _association_target(session: Session, assoc: Association, route: SignInRoute) -> Target | None:
    card = session.get(Card, assoc.card_id)
    person = session.get(Person, card.person_id) if card else None
    org = session.get(Organisation, assoc.organisation_id)
    if card is None or person is None or org is None or card.status == CardStatus.REVOKED:
        return None
    return Target(card=card, person_id=person.id, organisation=org, route=route)


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
