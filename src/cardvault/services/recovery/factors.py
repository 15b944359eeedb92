"""Which second factors a passcode reset asks for, and which plug-ins check a response
(DESIGN §3.3: "where the holder has a bound second factor … the portal also asks for it").

A reset is not a sign-in to one organisation: the holder may have a factor bound in any of
their organisations, so every installed plug-in of :mod:`cardvault.services.signin.factors` is
asked for an offer in each of them, the card's own organisation first. A response is then
checked by the same plug-ins, in the organisations that offered them; what is matched and
how (single-use time steps, number matching, sign counters) stays in the plug-ins.

Security keys are the exception (issue 21): their plug-in keeps one challenge for the keys
of one organisation, so a reset asks for the keys of all the holder's organisations in one
request (:mod:`~cardvault.services.recovery.reset_keys`), and that one candidate checks
the answer in the organisation of the key that gave it.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardvault.domain.push_policy import PushStatus
from cardvault.errors import NotFound
from cardvault.services.devices import push
from cardvault.services.recovery import reset_keys
from cardvault.services.signin.factor_store import factor_context, factor_organisation
from cardvault.services.signin.factors import (
    FactorAnswer,
    FactorContext,
    Offer,
    SecondFactor,
    codes,
    installed,
)
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import AuthTransaction, Card, Membership, Organisation
from cardvault.store.queries.organisations import policy_of

#: what the holder's phone shows as the computer asking (a push says where it comes from)
CLIENT_NAME = "Self-service portal: passcode reset"
#: ``{"method": "code", "code": …}`` is tried against every one-time-code factor of the card
#: (the paired phone's own code, an authenticator app): the holder cannot tell which app a
#: code belongs to, and one code is one try
ONE_TIME_CODE = codes.ANY_CODE
CODE_METHODS = codes.METHODS


def context(
    session: Session, rt: Runtime, actor: Actor, card: Card, org: Organisation, txn: AuthTransaction
) -> FactorContext:
    """What a plug-in needs to offer or check itself in one organisation, for this reset."""
    return factor_context(session, rt, actor, card, org, txn)


def _holder_orgs(session: Session, card: Card) -> list[Organisation]:
    """The card's own organisation first, then the holder's other organisations."""
    orgs = list(
        session.scalars(
            select(Organisation)
            .join(Membership, Membership.organisation_id == Organisation.id)
            .where(Membership.person_id == card.person_id)
            .order_by(Organisation.code)
        )
    )
    return sorted(orgs, key=lambda o: o.id != card.organisation_id)


def offers(
    session: Session, rt: Runtime, actor: Actor, card: Card, txn: AuthTransaction
) -> list[tuple[Offer, list[str]]]:
    """Each bound second factor once: its offer and the organisations it is bound in (of
    those whose policy allows that second factor, ``second_factors``)."""
    found: dict[str, tuple[Offer, list[str]]] = {}
    orgs = _holder_orgs(session, card)
    for org in orgs:
        ctx = context(session, rt, actor, card, org, txn)
        policy = policy_of(org)
        for method, factor in installed().items():
            if method == reset_keys.METHOD or not policy.allows_factor(method):
                continue  # security keys: asked once for all organisations, below
            offer = factor.offer(ctx)
            if offer is not None:
                found.setdefault(method, (offer, []))[1].append(org.id)
    ctx = context(session, rt, actor, card, orgs[0], txn)
    seen = [factor_organisation(org) for org in orgs]
    key_offer = reset_keys.offer(ctx, seen)
    if key_offer is not None:
        key_orgs = [org.id for org, _keys in reset_keys.with_keys(ctx, seen)]
        found[reset_keys.METHOD] = (key_offer, key_orgs)
    return list(found.values())


def bound_in(txn: AuthTransaction, method: str) -> list[str]:
    """The organisations in which ``method`` was offered for this reset (card's own first)."""
    org_ids: list[str] = txn.factor_state.get("factors", {}).get(method) or []
    return org_ids


def push_organisations(session: Session, card: Card, txn: AuthTransaction) -> list[str]:
    """The organisations whose paired phones a reset's push goes to (issue 21).

    A reset follows the policy of the card's own organisation; its phones are asked, and so
    are those of the holder's other organisations whose recovery rules agree with it. When
    none agrees, the first organisation with a phone (the card's own when it has one)."""
    bound = bound_in(txn, "authenticator")
    home = session.get(Organisation, card.organisation_id)
    assert home is not None
    rules = policy_of(home)
    agreeing = [
        org.id
        for org_id in bound
        if (org := session.get(Organisation, org_id)) is not None
        and (org.id == home.id or policy_of(org).same_recovery_rules(rules))
    ]
    return agreeing or bound[:1]


def candidates(txn: AuthTransaction, method: str) -> list[tuple[SecondFactor, str]]:
    """(plug-in, organisation) pairs that may check a response of ``method``."""
    if method == reset_keys.METHOD:
        org_ids = bound_in(txn, method)
        return [(reset_keys.ResetSecurityKeys(), org_ids[0])] if org_ids else []
    factors = installed()
    methods = CODE_METHODS if method == ONE_TIME_CODE else (method,)
    return [(factors[m], org_id) for m in methods if m in factors for org_id in bound_in(txn, m)]


def awaiting_phone(rt: Runtime, transaction_id: str, response: FactorAnswer) -> bool:
    """Whether the response names a push of this reset that the phone has not answered."""
    challenge_id = response.challenge_id
    if response.method != "authenticator" or challenge_id is None:
        return False
    if response.code is not None:
        return False  # the plug-in takes a code before a push
    try:
        return push.status(rt, challenge_id[:36], transaction_id) is PushStatus.PENDING
    except NotFound:
        return False  # not this reset's: the plug-in refuses it, and the try counts


#: of several refusals of one response, the one that says most
telling = codes.telling
