"""Signing in to one of several organisations (DESIGN §3.6: a person may belong to several;
issue 21).

An email address names a person, not an organisation. When the holder (or RA user) has
more than one organisation that would admit this sign-in (the caller's address in its
networks, the route allowed by its policy) and the client named none, the engine does not
pick one: after the right passcode the transaction waits in state ``organisation`` and the
answer lists the organisations to choose from; :func:`chosen` (through
``Engine.choose_organisation``) then sets the transaction's organisation. The second factors
offered, the network allow-list, the session's organisation and the audit chain of every
later event follow that choice. When exactly one organisation admits the sign-in, it is
that one.

Which organisations admit a sign-in is checked before the passcode (none at all: refused
like a wrong passcode), so the list is shown only to someone who knows the passcode.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardvault.domain import identifiers
from cardvault.domain.vocabulary import AuthState, SignInRoute
from cardvault.errors import InvalidInput
from cardvault.services.signin import refusals
from cardvault.services.signin.identification import Target
from cardvault.services.signin.views import OrganisationChoice
from cardvault.services.system.runtime import Actor
from cardvault.store.models import AuthTransaction, Card, Membership, Organisation, Person
from cardvault.store.queries.organisations import AnyOrg

#: the sign-in routes whose identifier names no organisation
UNSCOPED = (SignInRoute.EMAIL,)


def choice(org: AnyOrg) -> OrganisationChoice:
    """What the person is shown of one organisation to choose from."""
    return OrganisationChoice(code=org.code, name=org.name)


def _candidates(session: Session, target: Target) -> list[AnyOrg]:
    """The person's organisations, the card's own first (as the resolver read them, when
    it did). (An RA sign-in is refused without any RA role, as before the passcode; the
    role's organisation is chosen after sign-in.)"""
    rows: tuple[AnyOrg, ...] | None = target.memberships
    if rows is None:
        rows = tuple(
            session.scalars(
                select(Organisation)
                .join(Membership, Membership.organisation_id == Organisation.id)
                .where(Membership.person_id == target.person_id)
            )
        )
    orgs = {o.id: o for o in rows}
    return sorted(orgs.values(), key=lambda o: (o.id != target.card.organisation_id, o.code))


def admitting(session: Session, actor: Actor, purpose: str, target: Target) -> list[AnyOrg]:
    """The organisations that would admit this sign-in: of the person's, when its route
    names none; otherwise the target's own (or none, when it refuses)."""
    scoped = target.route not in UNSCOPED
    orgs = [target.organisation] if scoped else _candidates(session, target)
    return [
        org
        for org in orgs
        if refusals.why_refused(session, actor, purpose, replace(target, organisation=org)) is None
    ]


def chosen(session: Session, actor: Actor, txn: AuthTransaction, org_code: str) -> Target:
    """The sign-in's target in the organisation chosen, checked again (networks, policy, RA
    role) as before the passcode; the transaction now belongs to it and waits for its
    second factor."""
    code = identifiers.org_code(org_code)
    target = _target(session, txn)
    org = next((o for o in admitting(session, actor, txn.purpose, target) if o.code == code), None)
    if org is None:
        raise InvalidInput(
            f"You cannot sign in to {code} here; choose one of the organisations offered.",
            field="organisation",
        )
    txn.organisation_id, txn.state = org.id, AuthState.SECOND_FACTOR
    return replace(target, organisation=org)


def _target(session: Session, txn: AuthTransaction) -> Target:
    card = session.get(Card, txn.card_id)
    person = session.get(Person, card.person_id) if card else None
    org = session.get(Organisation, txn.organisation_id)
    assert card is not None and person is not None and org is not None
    return Target(card=card, person_id=person.id, organisation=org, route=SignInRoute(txn.method))
