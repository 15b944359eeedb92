"""Which second factors a passcode reset asks for, and which plug-ins check a response
(DESIGN §3.3: "where the holder has a bound second factor … the portal also asks for it").

A reset is not a sign-in to one organisation: the holder may have a factor bound in any of
their organisations, so every installed plug-in of :mod:`cardvault.services.signin.factors` is
asked for an offer in each of them, the card's own organisation first. A response is then
checked by the same plug-ins, in the organisations that offered them; what is matched and
how (single-use time steps, number matching, sign counters) stays in the plug-ins.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardvault.domain.push_policy import PushStatus
from cardvault.errors import NotFound
from cardvault.services.devices import push
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
    return FactorContext(
        rt=rt,
        session=session,
        card=card,
        organisation=org,
        transaction=txn,
        actor=actor,
        now=rt.clock(),
    )


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
    """Each bound second factor once: its offer and the organisations it is bound in."""
    found: dict[str, tuple[Offer, list[str]]] = {}
    for org in _holder_orgs(session, card):
        ctx = context(session, rt, actor, card, org, txn)
        for method, factor in installed().items():
            offer = factor.offer(ctx)
            if offer is not None:
                found.setdefault(method, (offer, []))[1].append(org.id)
    return list(found.values())


def bound_in(txn: AuthTransaction, method: str) -> list[str]:
    """The organisations in which ``method`` was offered for this reset (card's own first)."""
    org_ids: list[str] = txn.factor_state.get("factors", {}).get(method) or []
    return org_ids


def candidates(txn: AuthTransaction, method: str) -> list[tuple[SecondFactor, str]]:
    """(plug-in, organisation) pairs that may check a response of ``method``."""
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
