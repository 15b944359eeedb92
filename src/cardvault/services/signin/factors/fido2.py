"""A FIDO2 security key as the possession factor (DESIGN §3.2), in two ways:

* after an email or AD sign-in's passcode, the offer carries ``navigator.credentials.get``
  options for the card's keys in this organisation; the challenge state waits in the
  transaction's ``factor_state`` (it expires with the transaction, and is used once);
  the client answers ``{"method": "fido2", "credential": <toJSON()>}``;
* after a sign-in that started from the key itself (``security_key_signin``), the client
  answers ``{"method": "fido2", "proof": ...}`` and the proof is spent here, once.

Every refusal becomes a FactorFailed with the key's own error code, so that the engine
audits it with the reason and the transaction keeps the used-up challenge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from cardvault import json_types
from cardvault.domain import webauthn
from cardvault.domain.vocabulary import MethodKind
from cardvault.domain.webauthn import WebAuthnPolicy
from cardvault.errors import CardvaultError
from cardvault.json_types import JsonObject
from cardvault.services.security_keys.keys import credential_key, raw_id
from cardvault.services.signin.errors import FactorFailed
from cardvault.services.signin.factors.base import (
    BoundMethod,
    FactorAnswer,
    FactorContext,
    FactorOutcome,
    KeyVerified,
    SecurityKeyOffer,
)

STATE_KEY = "fido2"


@dataclass(frozen=True, kw_only=True)
class Challenge:
    """The security-key challenge a transaction waits on, kept in its factor state under
    ``STATE_KEY`` (a reset's keeps the same shape): the FIDO2 library's state, and the
    options the client was given. It is used once, whichever way its answer goes."""

    state: JsonObject
    options: JsonObject

    @property
    def used(self) -> bool:
        """Whether an answer was checked against it (a new one is made for the next)."""
        return bool(self.state.get("used"))


def challenge_of(factor_state: JsonObject) -> Challenge | None:
    """The challenge kept in a transaction's factor state, or None before one is made."""
    kept = factor_state.get(STATE_KEY)
    if not isinstance(kept, dict) or not kept:
        return None
    return Challenge(
        state=json_types.object_at(kept, "state"), options=json_types.object_at(kept, "options")
    )


def new_challenge(
    ctx: FactorContext, policy: WebAuthnPolicy, keys: Sequence[BoundMethod]
) -> Challenge:
    """A fresh challenge for ``keys``, kept in the transaction."""
    options, state = webauthn.begin_assertion(
        policy, credentials=ctx.store.key_credentials([k.id for k in keys])
    )
    challenge = Challenge(state=state, options=options)
    _keep(ctx, challenge)
    return challenge


def _keep(ctx: FactorContext, challenge: Challenge) -> None:
    ctx.store.save_factor_state(STATE_KEY, {"state": challenge.state, "options": challenge.options})


def check_assertion(
    ctx: FactorContext,
    credential: JsonObject,
    organisation_id: str,
    keys: list[BoundMethod],
    *,
    not_started: str,
) -> KeyVerified:
    """Check the answer to the kept challenge with a key of ``organisation_id`` (``keys``,
    listed there), using the challenge up whatever the outcome; ``not_started``: what to
    tell a client that answers no challenge. Raises FactorFailed."""
    challenge = challenge_of(ctx.store.factor_state())
    if challenge is None:
        raise FactorFailed(
            not_started, reason="FIDO2 state missing", code="webauthn_invalid_state", counts=False
        )
    state = dict(challenge.state)
    try:
        return ctx.store.verify_assertion(organisation_id, state, credential)
    except CardvaultError as exc:
        _refused(ctx, exc, organisation_id, keys, credential)
        raise FactorFailed(exc.message, reason=exc.message, code=exc.code) from exc
    finally:
        _keep(ctx, replace(challenge, state={**state, "used": True}))


def _refused(
    ctx: FactorContext,
    exc: CardvaultError,
    organisation_id: str,
    keys: list[BoundMethod],
    credential: JsonObject,
) -> None:
    """The engine audits the refusal; a suspected clone also gets its own event, in the
    chain of the key's organisation."""
    key = key_answering(keys, credential)
    ctx.store.audit_clone(exc, None if key is None else key.id, organisation_id)


def key_answering(keys: Sequence[BoundMethod], credential: JsonObject) -> BoundMethod | None:
    """Of ``keys``, the one whose credential gave this answer (None for an unknown or a
    malformed credential id)."""
    try:
        wanted = credential_key(raw_id(credential))
    except CardvaultError:
        return None
    return next((k for k in keys if k.lookup_key == wanted), None)


def key_details(verified: KeyVerified) -> JsonObject:
    """What a key's answer tells the audit log."""
    return {
        "method": MethodKind.SECURITY_KEY,
        "association": verified.key_id,
        "nickname": verified.label,
        "user_verified": verified.user_verified,
        "sign_count": verified.sign_count,
    }


class SecurityKeyFactor:
    """A security key (WebAuthn assertion), or the proof of a sign-in that started from one."""

    method: str = MethodKind.SECURITY_KEY

    def offer(self, ctx: FactorContext) -> SecurityKeyOffer | None:
        """The same challenge until it is used (the engine asks again before verifying)."""
        policy = ctx.organisation.policy
        if not policy.allows(self.method):
            return None
        keys = ctx.store.security_keys(ctx.organisation.id)
        if not keys:
            return None
        challenge = challenge_of(ctx.store.factor_state())
        if challenge is None or challenge.used:
            challenge = new_challenge(ctx, ctx.store.webauthn_policy(ctx.organisation.id), keys)
        return SecurityKeyOffer(
            method=self.method,
            keys=tuple(k.label for k in keys),
            user_verification=policy.fido2_user_verification_required,
            options=dict(challenge.options),
        )

    def verify(self, ctx: FactorContext, answer: FactorAnswer) -> FactorOutcome:
        """Check the key's assertion, or spend the sign-in's proof; raises FactorFailed."""
        if answer.has_proof:
            return self._spend_proof(ctx, answer.proof or "")
        credential = answer.credential
        if not isinstance(credential, dict):
            raise FactorFailed(
                "Use your security key to finish signing in.",
                reason="FIDO2 response missing",
                counts=False,
            )
        keys = ctx.store.security_keys(ctx.organisation.id)
        verified = check_assertion(
            ctx,
            credential,
            ctx.organisation.id,
            keys,
            not_started="Sign in again: the security key request was not started.",
        )
        return FactorOutcome(label=verified.label or "security key", details=key_details(verified))

    def _spend_proof(self, ctx: FactorContext, proof: str) -> FactorOutcome:
        spent = ctx.store.consume_proof(proof)
        if spent is None:
            raise FactorFailed(
                "This security key sign-in has expired or was already used; start again.",
                reason="FIDO2 proof unknown, spent, expired or for another card",
                code="fido2_proof_invalid",
                counts=False,  # the key's answer was checked (and counted) when it was given
            )
        return FactorOutcome(
            label=spent.nickname or "security key",
            details={
                "method": self.method,
                "association": spent.association_id,
                "nickname": spent.nickname,
            },
        )
