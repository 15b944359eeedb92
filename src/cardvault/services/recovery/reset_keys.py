"""Security keys during a passcode reset, across the holder's organisations (issue 21).

A reset is not a sign-in to one organisation: the holder may have registered keys in any
organisation that allows security keys. The sign-in plug-in (``signin.factors.fido2``)
keeps one challenge per transaction for the keys of *one* organisation, so a reset asks
here instead: one ``navigator.credentials.get`` request whose ``allowCredentials`` lists
the card's keys of every such organisation (the relying party is the service, the same in
all of them), with user verification required when any of them requires it. The answer is
checked with the policy of the organisation its key was registered in (user
verification, allowed models, the sign counter), and the challenge is used once, whichever
key answers.

The state keeps the plug-in's shape (``factor_state["fido2"]``), so a page that reads the
pending options reads these.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from cardvault import json_types
from cardvault.domain import webauthn
from cardvault.domain.vocabulary import MethodKind
from cardvault.errors import CardvaultError
from cardvault.json_types import JsonObject
from cardvault.services.security_keys.keys import (
    active_keys,
    audit_clone,
    credential_key,
    policy_for,
    raw_id,
    stored_credential,
    verify_assertion,
)
from cardvault.services.signin.errors import FactorFailed
from cardvault.services.signin.factors import (
    FactorAnswer,
    FactorContext,
    FactorOutcome,
    SecurityKeyOffer,
)
from cardvault.store.models import Association, Organisation
from cardvault.store.queries.organisations import policy_of

STATE_KEY = "fido2"
METHOD = MethodKind.SECURITY_KEY


def with_keys(
    ctx: FactorContext, orgs: Sequence[Organisation]
) -> list[tuple[Organisation, list[Association]]]:
    """Of ``orgs``, those whose policy allows security keys (as a sign-in route and as a
    second factor), with the card's active keys there (one without keys is left out)."""
    found = []
    for org in orgs:
        policy = policy_of(org)
        if not (policy.allows(METHOD) and policy.allows_factor(METHOD)):
            continue
        keys = active_keys(ctx.session, ctx.card.id, org.id)
        if keys:
            found.append((org, keys))
    return found


def _orgs(ctx: FactorContext) -> list[Organisation]:
    org_ids: list[str] = ctx.transaction.factor_state.get("factors", {}).get(METHOD) or []
    if not org_ids:  # before the reset's offers are stored: the context's organisation
        return [ctx.organisation]
    orgs = [ctx.session.get(Organisation, org_id) for org_id in org_ids]
    return [o for o in orgs if o is not None]


def offer(ctx: FactorContext, orgs: Sequence[Organisation]) -> SecurityKeyOffer | None:
    """One request for the card's keys in ``orgs``; the same until it is answered."""
    found = with_keys(ctx, orgs)
    if not found:
        return None
    pending: JsonObject | None = ctx.transaction.factor_state.get(STATE_KEY)
    if not pending or json_types.object_at(pending, "state").get("used"):
        pending = _begin(ctx, found)
        _save(ctx, pending)
    return SecurityKeyOffer(
        method=METHOD,
        keys=tuple(k.label for _org, keys in found for k in keys),
        user_verification=_uv_required(found),
        options=dict(json_types.object_at(pending, "options")),
    )


def _uv_required(with_keys: Sequence[tuple[Organisation, list[Association]]]) -> bool:
    return any(policy_of(org).fido2_user_verification_required for org, _ in with_keys)


def _begin(
    ctx: FactorContext, with_keys: Sequence[tuple[Organisation, list[Association]]]
) -> JsonObject:
    """The request: the first organisation's relying-party policy (the service's RP ID
    and origins are the same in all), the strictest user verification of them all."""
    policy = replace(
        policy_for(ctx.rt.settings, with_keys[0][0]),
        user_verification_required=_uv_required(with_keys),
    )
    creds = [stored_credential(k) for _org, keys in with_keys for k in keys]
    options, state = webauthn.begin_assertion(policy, credentials=creds)
    return {"state": state, "options": options}


def verify(ctx: FactorContext, answer: FactorAnswer) -> FactorOutcome:
    """The key's answer, checked in the organisation its key belongs to."""
    credential = answer.credential
    if not isinstance(credential, dict):
        raise FactorFailed(
            "Use your security key when the page asks for it.",
            reason="FIDO2 credential missing",
            counts=False,
        )
    pending = ctx.transaction.factor_state.get(STATE_KEY)
    if not pending:
        raise FactorFailed(
            "The security key request was not started; use your key when the page asks.",
            reason="FIDO2 state missing",
            code="webauthn_invalid_state",
            counts=False,
        )
    state = dict(pending["state"])
    org, keys = _owner(ctx, credential)
    try:
        verified = verify_assertion(
            ctx.session,
            ctx.rt.settings,
            org=org,
            state=state,
            candidates=keys,
            response=credential,
            now=ctx.now,
        )
    except CardvaultError as exc:
        _audit_clone(ctx, exc, org, keys, credential)
        raise FactorFailed(exc.message, reason=exc.message, code=exc.code) from exc
    finally:
        _save(ctx, {**pending, "state": {**state, "used": True}})
    assoc = verified.association
    return FactorOutcome(
        label=assoc.label or "security key",
        details={
            "method": METHOD,
            "association": assoc.id,
            "nickname": assoc.label,
            "key_organisation": org.code,
            "user_verified": verified.result.user_verified,
            "sign_count": verified.result.new_sign_count,
        },
    )


def _owner(ctx: FactorContext, credential: JsonObject) -> tuple[Organisation, list[Association]]:
    """The organisation whose keys include the answering credential, and those keys; an
    unknown credential is checked against the first organisation's keys (and refused there
    as not registered, after the challenge is used up)."""
    by_org = with_keys(ctx, _orgs(ctx)) or [(ctx.organisation, [])]
    try:
        wanted = credential_key(raw_id(credential))
    except CardvaultError:
        return by_org[0]
    for org, keys in by_org:
        if any(k.lookup_key == wanted for k in keys):
            return org, keys
    return by_org[0]


def _audit_clone(
    ctx: FactorContext,
    exc: CardvaultError,
    org: Organisation,
    keys: list[Association],
    credential: JsonObject,
) -> None:
    """A suspected clone gets its own event, in the chain of the key's organisation."""
    try:
        wanted = credential_key(raw_id(credential))
    except CardvaultError:
        return
    assoc = next((k for k in keys if k.lookup_key == wanted), None)
    audit_clone(
        ctx.session,
        ctx.rt,
        ctx.actor,
        exc,
        assoc=assoc,
        org_id=org.id,
        details={"transaction": ctx.transaction.id},
    )


def _save(ctx: FactorContext, pending: JsonObject) -> None:
    # a JSON column: assign a new dict so that the change is written
    ctx.transaction.factor_state = {**ctx.transaction.factor_state, STATE_KEY: pending}


class ResetSecurityKeys:
    """The security key as the reset's second-factor candidate (one for all organisations):
    shaped like a plug-in, so that the reset checks it as it checks the others."""

    method: str = METHOD

    def offer(self, ctx: FactorContext) -> SecurityKeyOffer | None:
        """One request listing the keys of every organisation that allows them for a reset."""
        return offer(ctx, _orgs(ctx))

    def verify(self, ctx: FactorContext, answer: FactorAnswer) -> FactorOutcome:
        """A key of any of those organisations, checked under its own organisation's rules."""
        return verify(ctx, answer)
