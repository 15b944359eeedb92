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

from cardvault import json_types
from cardvault.domain import webauthn
from cardvault.domain.vocabulary import AuthState, MethodKind
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
from cardvault.services.security_keys.signin import consume_proof
from cardvault.services.signin.errors import FactorFailed
from cardvault.services.signin.factors.base import (
    FactorAnswer,
    FactorContext,
    FactorOutcome,
    SecurityKeyOffer,
)
from cardvault.services.system.runtime import Runtime
from cardvault.store.models import Association, AuthTransaction
from cardvault.store.queries.organisations import policy_of

STATE_KEY = "fido2"


class SecurityKeyFactor:
    """A security key (WebAuthn assertion), or the proof of a sign-in that started from one."""

    method: str = MethodKind.SECURITY_KEY

    def offer(self, ctx: FactorContext) -> SecurityKeyOffer | None:
        """The same challenge until it is used (the engine asks again before verifying)."""
        policy = policy_of(ctx.organisation)
        if not policy.allows(self.method):
            return None
        keys = active_keys(ctx.session, ctx.card.id, ctx.organisation.id)
        if not keys:
            return None
        pending = ctx.transaction.factor_state.get(STATE_KEY)
        if not pending or pending["state"].get("used"):
            options, state = webauthn.begin_assertion(
                policy_for(ctx.rt.settings, ctx.organisation),
                credentials=[stored_credential(k) for k in keys],
            )
            pending = {"state": state, "options": options}
            self._save(ctx, pending)
        return SecurityKeyOffer(
            method=self.method,
            keys=tuple(k.label for k in keys),
            user_verification=policy.fido2_user_verification_required,
            options=dict(pending["options"]),
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
        return self._check_assertion(ctx, credential)

    def _spend_proof(self, ctx: FactorContext, proof: str) -> FactorOutcome:
        row = consume_proof(
            ctx.session,
            proof,
            card_id=ctx.card.id,
            organisation_id=ctx.organisation.id,
            now=ctx.now,
        )
        if row is None:
            raise FactorFailed(
                "This security key sign-in has expired or was already used; start again.",
                reason="FIDO2 proof unknown, spent, expired or for another card",
                code="fido2_proof_invalid",
                counts=False,  # the key's answer was checked (and counted) when it was given
            )
        nickname = json_types.text_or_none(row.details, "nickname")
        return FactorOutcome(
            label=nickname or "security key",
            details={
                "method": self.method,
                "association": row.association_id,
                "nickname": nickname,
            },
        )

    def _check_assertion(self, ctx: FactorContext, credential: JsonObject) -> FactorOutcome:
        pending = ctx.transaction.factor_state.get(STATE_KEY)
        if not pending:
            raise FactorFailed(
                "Sign in again: the security key request was not started.",
                reason="FIDO2 state missing",
                code="webauthn_invalid_state",
                counts=False,
            )
        state = dict(pending["state"])
        keys = active_keys(ctx.session, ctx.card.id, ctx.organisation.id)
        try:
            verified = verify_assertion(
                ctx.session,
                ctx.rt.settings,
                org=ctx.organisation,
                state=state,
                candidates=keys,
                response=credential,
                now=ctx.now,
            )
        except CardvaultError as exc:
            self._refused(ctx, exc, keys, credential)
            raise FactorFailed(exc.message, reason=exc.message, code=exc.code) from exc
        finally:
            self._save(ctx, {**pending, "state": {**state, "used": True}})
        assoc = verified.association
        return FactorOutcome(
            label=assoc.label or "security key",
            details={
                "method": self.method,
                "association": assoc.id,
                "nickname": assoc.label,
                "user_verified": verified.result.user_verified,
                "sign_count": verified.result.new_sign_count,
            },
        )

    @staticmethod
    def _refused(
        ctx: FactorContext,
        exc: CardvaultError,
        keys: list[Association],
        credential: JsonObject,
    ) -> None:
        """The engine audits the refusal; a suspected clone also gets its own event."""
        try:
            key = credential_key(raw_id(credential))
        except CardvaultError:
            return
        assoc = next((k for k in keys if k.lookup_key == key), None)
        audit_clone(
            ctx.session,
            ctx.rt,
            ctx.actor,
            exc,
            assoc=assoc,
            org_id=ctx.organisation.id,
            details={"transaction": ctx.transaction.id},
        )

    @staticmethod
    def _save(ctx: FactorContext, pending: JsonObject) -> None:
        # a JSON column: assign a new dict so that the change is written
        ctx.transaction.factor_state = {**ctx.transaction.factor_state, STATE_KEY: pending}


def pending_options(rt: Runtime, transaction_id: str) -> JsonObject | None:
    """The ``navigator.credentials.get`` options a sign-in in progress is waiting for (for a
    web page that receives them in a second request), or None when there is no unanswered
    security-key challenge in a live transaction."""
    with rt.db() as session:
        txn = session.get(AuthTransaction, transaction_id[:36])
        if txn is None or txn.state != AuthState.SECOND_FACTOR or rt.clock() >= txn.expires_at:
            return None
        pending = txn.factor_state.get(STATE_KEY)
        if not pending or pending["state"].get("used"):
            return None
        options: JsonObject = pending["options"]
        return options
