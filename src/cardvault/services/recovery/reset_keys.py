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

from cardvault.domain.vocabulary import MethodKind
from cardvault.json_types import JsonObject
from cardvault.services.signin.errors import FactorFailed
from cardvault.services.signin.factors import (
    FactorAnswer,
    FactorContext,
    FactorOutcome,
    SecurityKeyOffer,
    fido2,
)
from cardvault.services.signin.factors.base import BoundMethod, FactorOrganisation

METHOD = MethodKind.SECURITY_KEY
#: an organisation whose policy allows security keys, and the card's keys there
WithKeys = tuple[FactorOrganisation, list[BoundMethod]]


def with_keys(ctx: FactorContext, orgs: Sequence[FactorOrganisation]) -> list[WithKeys]:
    """Of ``orgs``, those whose policy allows security keys (as a sign-in route and as a
    second factor), with the card's active keys there (one without keys is left out)."""
    found = []
    for org in orgs:
        if not (org.policy.allows(METHOD) and org.policy.allows_factor(METHOD)):
            continue
        keys = ctx.store.security_keys(org.id)
        if keys:
            found.append((org, keys))
    return found


def _orgs(ctx: FactorContext) -> list[FactorOrganisation]:
    bound = ctx.store.factor_state().get("factors")
    org_ids = bound.get(METHOD) if isinstance(bound, dict) else None
    if not isinstance(org_ids, list) or not org_ids:
        # before the reset's offers are stored: the context's organisation
        return [ctx.organisation]
    orgs = [ctx.store.organisation(str(org_id)) for org_id in org_ids]
    return [o for o in orgs if o is not None]


def offer(ctx: FactorContext, orgs: Sequence[FactorOrganisation]) -> SecurityKeyOffer | None:
    """One request for the card's keys in ``orgs``; the same until it is answered."""
    found = with_keys(ctx, orgs)
    if not found:
        return None
    challenge = fido2.challenge_of(ctx.store.factor_state())
    if challenge is None or challenge.used:
        challenge = _begin(ctx, found)
    return SecurityKeyOffer(
        method=METHOD,
        keys=tuple(k.label for _org, keys in found for k in keys),
        user_verification=_uv_required(found),
        options=dict(challenge.options),
    )


def _uv_required(with_keys: Sequence[WithKeys]) -> bool:
    return any(org.policy.fido2_user_verification_required for org, _ in with_keys)


def _begin(ctx: FactorContext, with_keys: Sequence[WithKeys]) -> fido2.Challenge:
    """The request: the first organisation's relying-party policy (the service's RP ID
    and origins are the same in all), the strictest user verification of them all."""
    policy = replace(
        ctx.store.webauthn_policy(with_keys[0][0].id),
        user_verification_required=_uv_required(with_keys),
    )
    return fido2.new_challenge(ctx, policy, [k for _org, keys in with_keys for k in keys])


def verify(ctx: FactorContext, answer: FactorAnswer) -> FactorOutcome:
    """The key's answer, checked in the organisation its key belongs to."""
    credential = answer.credential
    if not isinstance(credential, dict):
        raise FactorFailed(
            "Use your security key when the page asks for it.",
            reason="FIDO2 credential missing",
            counts=False,
        )
    org, keys = _owner(ctx, credential)
    verified = fido2.check_assertion(
        ctx,
        credential,
        org.id,
        keys,
        not_started="The security key request was not started; use your key when the page asks.",
    )
    return FactorOutcome(
        label=verified.label or "security key",
        details={**fido2.key_details(verified), "key_organisation": org.code},
    )


def _owner(ctx: FactorContext, credential: JsonObject) -> WithKeys:
    """The organisation whose keys include the answering credential, and those keys; an
    unknown credential is checked against the first organisation's keys (and refused there
    as not registered, after the challenge is used up)."""
    by_org = with_keys(ctx, _orgs(ctx)) or [(ctx.organisation, [])]
    for org, keys in by_org:
        if fido2.key_answering(keys, credential) is not None:
            return org, keys
    return by_org[0]


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
