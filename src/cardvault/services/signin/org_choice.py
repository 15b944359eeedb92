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
like a wrong passcode), so the list is shown only to someone who knows the passcode. A
choice refused is audited like every refused sign-in that names a card (:func:`audit`):
on the chain of the organisation named, when it is one of the person's (its RA sees who
tried to reach it from where), else on the chain the sign-in is for.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardvault.domain import identifiers
from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.vocabulary import AuthState, SignInRoute
from cardvault.errors import InvalidInput, error
from cardvault.services.signin import refusals
from cardvault.services.signin.identification import Target
from cardvault.services.signin.views import OrganisationChoice
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import AuthTransaction, Card, Membership, Organisation, Person

#: the sign-in routes whose identifier names no organisation
UNSCOPED = (SignInRoute.EMAIL,)
#: the audit reason of a choice naming none of the person's organisations
NOT_THEIRS = "organisation not one of the person's"


@dataclass(frozen=True, kw_only=True)
class Refusal:
    """Why a choice was refused, for the audit log only (never in the answer)."""

    transaction_id: str
    card_id: str
    #: the chain it goes on: the organisation named, if the person's, else the sign-in's
    organisation_id: str
    #: the code the client named (checked for shape)
    named: str
    reason: str


@error
class ChoiceRefused(InvalidInput):
    """The organisation named cannot be chosen; its :class:`Refusal` stays in the process
    (not JSON, so not in the answer) for the engine to audit once the step rolled back."""

    refusal: Refusal


def choice(org: Organisation) -> OrganisationChoice:
    """What the person is shown of one organisation to choose from."""
    return OrganisationChoice(code=org.code, name=org.name)


def _candidates(session: Session, target: Target) -> list[Organisation]:
    """The person's organisations, the card's own first (as the resolver read them, when
    it did). (An RA sign-in is refused without any RA role, as before the passcode; the
    role's organisation is chosen after sign-in.)"""
    rows = target.memberships
    if rows is None:
        rows = tuple(
            session.scalars(
                select(Organisation)
                .join(Membership, Membership.organisation_id == Organisation.id)
                .where(Membership.person_id == target.person.id)
            )
        )
    orgs = {o.id: o for o in rows}
    return sorted(orgs.values(), key=lambda o: (o.id != target.card.organisation_id, o.code))


def _reachable(session: Session, target: Target) -> list[Organisation]:
    """The organisations this sign-in could be for: the person's, when its route names
    none; otherwise the target's own."""
    return [target.organisation] if target.route not in UNSCOPED else _candidates(session, target)


def admitting(session: Session, actor: Actor, purpose: str, target: Target) -> list[Organisation]:
    """The organisations that would admit this sign-in (of :func:`_reachable`)."""
    return [
        org
        for org in _reachable(session, target)
        if refusals.why_refused(session, actor, purpose, replace(target, organisation=org)) is None
    ]


def chosen(session: Session, actor: Actor, txn: AuthTransaction, org_code: str) -> Target:
    """The sign-in's target in the organisation chosen, checked again (networks, policy, RA
    role) as before the passcode; the transaction now belongs to it and waits for its
    second factor. A refusal raises :class:`ChoiceRefused` (the caller audits it)."""
    code = identifiers.org_code(org_code)
    target = _target(session, txn)
    org = next((o for o in _reachable(session, target) if o.code == code), None)
    reason = (
        refusals.why_refused(session, actor, txn.purpose, replace(target, organisation=org))
        if org is not None
        else NOT_THEIRS
    )
    if org is None or reason is not None:
        raise ChoiceRefused(
            f"You cannot sign in to {code} here; choose one of the organisations offered.",
            field="organisation",
            refusal=Refusal(
                transaction_id=txn.id,
                card_id=target.card.id,
                organisation_id=(org or target.organisation).id,
                named=code,
                reason=reason or NOT_THEIRS,
            ),
        )
    txn.organisation_id, txn.state = org.id, AuthState.SECOND_FACTOR
    return replace(target, organisation=org)


def audit(rt: Runtime, actor: Actor, refusal: Refusal) -> None:
    """Audit a refused choice with the client's address, in a transaction of its own (the
    step's rolled back), as the refusals after the passcode are."""
    refusals.after_passcode(
        rt,
        actor,
        refusal.card_id,
        refusal.organisation_id,
        refusal.transaction_id,
        refusal.reason,
        action=AuditAction.AUTH_ORGANISATION_CHOSEN,
        details={"organisation": refusal.named},
    )


def _target(session: Session, txn: AuthTransaction) -> Target:
    card = session.get(Card, txn.card_id)
    person = session.get(Person, card.person_id) if card else None
    org = session.get(Organisation, txn.organisation_id)
    assert card is not None and person is not None and org is not None
    return Target(card=card, person=person, organisation=org, route=SignInRoute(txn.method))
