"""The RA's certificate work (DESIGN §3.9): suspend a card, lift the suspension, renew its
certificates, and the expiry report; each scoped to the RA's organisation."""

from __future__ import annotations

from dataclasses import dataclass

from cardvault.services.pki import expiry, renewal, suspension
from cardvault.services.ra.actions import RaContext
from cardvault.services.ra.persons import card_in_scope
from cardvault.services.system.runtime import Runtime
from cardvault.store.models import Card, Organisation
from cardvault.store.queries.organisations import policy_of


def suspend(rt: Runtime, ctx: RaContext, user_id: str, *, reason: str) -> Card:
    """Certificates on hold, sign-ins refused, until an RA lifts it."""
    with rt.db() as session:
        card = card_in_scope(session, ctx, user_id)
    return suspension.suspend(
        rt, ctx.actor, card.serial, reason=reason, organisation_id=ctx.organisation_id
    )


def resume(rt: Runtime, ctx: RaContext, user_id: str, *, reason: str) -> Card:
    """The card back as it was before the suspension."""
    with rt.db() as session:
        card = card_in_scope(session, ctx, user_id)
    return suspension.resume(
        rt, ctx.actor, card.serial, reason=reason, organisation_id=ctx.organisation_id
    )


def renew(rt: Runtime, ctx: RaContext, user_id: str) -> renewal.Renewed:
    """New certificates for the card's current keys (see services/pki/renewal)."""
    with rt.db() as session:
        card = card_in_scope(session, ctx, user_id)
    return renewal.recertify(rt, ctx.actor, card.serial, organisation_id=ctx.organisation_id)


@dataclass(frozen=True, kw_only=True)
class ExpiryReport:
    """The organisation's cards whose certificates expire soon."""

    renew_days: int
    cards: list[expiry.Expiring]


def expiring(rt: Runtime, ctx: RaContext) -> ExpiryReport:
    """The RA's organisation's cards whose certificates expire within its renew_days."""
    with rt.db() as session:
        org = session.get(Organisation, ctx.organisation_id)
        assert org is not None
        days = policy_of(org).renew_days
    return ExpiryReport(
        renew_days=days, cards=expiry.report(rt, organisation_id=ctx.organisation_id)
    )
