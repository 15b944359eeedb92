"""The RA's certificate actions on a person's card: suspend, lift a suspension (DESIGN
§3.9), each scoped to the RA's organisation like every RA action."""

from __future__ import annotations

from cardvault.services.pki import renewal, suspension
from cardvault.services.ra.actions import RaContext
from cardvault.services.ra.persons import card_in_scope
from cardvault.services.system.runtime import Runtime
from cardvault.store.models import Card


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
