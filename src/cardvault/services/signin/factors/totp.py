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
        app = codes.accept_once(
            ctx,
            ctx.store.authenticator_apps(),
            code,
            lambda a: ctx.store.open_app_secret(a.id),
            lambda a, step: ctx.store.take_app_step(a.id, step),
        )
        return FactorOutcome(
            label=app.label or "authenticator",
            details={"method": self.method, "association": app.id},
        )
