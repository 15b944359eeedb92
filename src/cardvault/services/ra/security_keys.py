"""Registering a holder's FIDO2 security key from the RA's browser (WebAuthn §7.1).

The vRA Manager's page names a *person* of the RA's organisation; the ceremony itself is
``security_key_registration``'s (state kept server-side with an expiry, answered once,
only by the RA who began it, stored in the one association format that every sign-in
path reads). The state handed back here is what the web session keeps between the two
requests: the ceremony's id and the card it is for.

Keys registered here are discoverable (sign-in with the key alone works too).
"""

from __future__ import annotations

from cardvault.domain import webauthn
from cardvault.errors import InvalidInput
from cardvault.json_types import JsonObject
from cardvault.services.cards.views import MethodView
from cardvault.services.ra.actions import RaContext
from cardvault.services.ra.persons import card_in_scope
from cardvault.services.security_keys import registration as security_key_registration
from cardvault.services.system.runtime import Runtime


def begin(rt: Runtime, ctx: RaContext, user_id: str) -> tuple[JsonObject, JsonObject]:
    """Options for ``navigator.credentials.create`` and the state to keep until complete."""
    with rt.db() as session:
        card = card_in_scope(session, ctx, user_id)
    start = security_key_registration.begin_registration(
        rt, ctx.actor, serial=card.serial, org_code=ctx.organisation_code, resident_key=True
    )
    return start.options, {"ceremony_id": start.ceremony_id, "card_id": card.id}


def complete(
    rt: Runtime,
    ctx: RaContext,
    user_id: str,
    state: JsonObject,
    response: JsonObject,
    nickname: str,
) -> MethodView:
    """Verify the key's answer and register it for the person's card here (audited)."""
    with rt.db() as session:
        card = card_in_scope(session, ctx, user_id)
    ceremony_id = state.get("ceremony_id")
    if state.get("card_id") != card.id or not isinstance(ceremony_id, str):
        raise webauthn.InvalidState("This response does not belong to the request in progress.")
    if not (nickname or "").strip():
        raise InvalidInput("Give the key a name, like 'Blue YubiKey'.", field="nickname")
    return security_key_registration.complete_registration(
        rt, ctx.actor, ceremony_id=ceremony_id, response=response, nickname=nickname
    )
