"""TOTP from an authenticator app (RFC 6238) as a second factor.

Each time step is accepted once per authenticator: the accepted step is written with a
conditional UPDATE (``counter < step``), so of any number of concurrent submissions of the
same code exactly one succeeds, on any number of server instances.
"""

from __future__ import annotations

from cardvault.domain import totp
from cardvault.services.signin.errors import FactorFailed
from cardvault.services.signin.factors import codes
from cardvault.services.signin.factors.base import (
    BoundMethod,
    CodeOffer,
    FactorAnswer,
    FactorContext,
    FactorOutcome,
)


class TotpFactor:
    """A one-time code from an authenticator app (RFC 6238)."""

    method = "totp"

    def offer(self, ctx: FactorContext) -> CodeOffer | None:
        """A code, while the card has an active authenticator app."""
        return (
            CodeOffer(method=self.method, digits=totp.DIGITS)
            if ctx.store.authenticator_apps()
            else None
        )

    def verify(self, ctx: FactorContext, answer: FactorAnswer) -> FactorOutcome:
        """Check the code against the card's apps, once per time step; raises FactorFailed."""
        code = answer.code
        if code is None:
            raise FactorFailed(
                "Enter the 6-digit code from your authenticator app.",
                reason="TOTP code missing",
                counts=False,
            )
        params = codes.params_for(ctx)
        replayed = False
        for assoc in ctx.store.authenticator_apps():
            step = self._match(ctx, assoc, code, params)
            if step is None:
                continue
            if ctx.store.take_app_step(assoc.id, step):
                return FactorOutcome(
                    label=assoc.label or "authenticator",
                    details={"method": self.method, "association": assoc.id},
                )
            replayed = True
        raise codes.refusal(replayed=replayed)

    def _match(
        self, ctx: FactorContext, app: BoundMethod, code: str, params: totp.TotpParams
    ) -> int | None:
        return codes.matching_step(ctx, ctx.store.open_app_secret(app.id), code, params)
