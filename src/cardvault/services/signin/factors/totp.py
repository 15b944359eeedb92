"""TOTP from an authenticator app (RFC 6238) as a second factor.

Each time step is accepted once per authenticator: the accepted step is written with a
conditional UPDATE (``counter < step``), so of any number of concurrent submissions of the
same code exactly one succeeds, on any number of server instances.
"""

from __future__ import annotations

from sqlalchemy import bindparam, select, update

from cardvault.domain import totp
from cardvault.domain.vocabulary import MethodKind, MethodStatus
from cardvault.services.cards.methods import open_secret
from cardvault.services.signin.errors import FactorFailed
from cardvault.services.signin.factors import codes
from cardvault.services.signin.factors.base import (
    CodeOffer,
    FactorAnswer,
    FactorContext,
    FactorOutcome,
)
from cardvault.store.models import Association, table_of

# Built once with bound parameters: every TOTP sign-in runs both, and SQLAlchemy reuses the
# compiled form of a statement object it has seen.
_ACTIVE_APPS = select(Association).where(
    Association.card_id == bindparam("app_card"),
    Association.organisation_id == bindparam("app_org"),
    Association.method == MethodKind.TOTP,
    Association.status == MethodStatus.ACTIVE,
)
# each time step is taken once, atomically: the UPDATE wins only below the stored step
_APPS = table_of(Association)
_TAKE_STEP = (
    update(_APPS)
    .where(_APPS.c.id == bindparam("app_id"), _APPS.c.counter < bindparam("step"))
    .values(counter=bindparam("step"), last_used_at=bindparam("used_at"))
    .returning(_APPS.c.id)
)


class TotpFactor:
    """A one-time code from an authenticator app (RFC 6238)."""

    method = "totp"

    def _associations(self, ctx: FactorContext) -> list[Association]:
        """The card's active apps, read once per request (offer, then verify)."""
        apps: list[Association] | None = ctx.looked_up.get(self.method)
        if apps is None:
            apps = list(
                ctx.session.scalars(
                    _ACTIVE_APPS, {"app_card": ctx.card.id, "app_org": ctx.organisation.id}
                )
            )
            ctx.looked_up[self.method] = apps
        return apps

    def offer(self, ctx: FactorContext) -> CodeOffer | None:
        """A code, while the card has an active authenticator app."""
        return (
            CodeOffer(method=self.method, digits=totp.DIGITS) if self._associations(ctx) else None
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
        for assoc in self._associations(ctx):
            step = self._match(ctx, assoc, code, params)
            if step is None:
                continue
            if self._accept_once(ctx, assoc, step):
                return FactorOutcome(
                    label=assoc.label or "authenticator",
                    details={"method": self.method, "association": assoc.id},
                )
            replayed = True
        raise codes.refusal(replayed=replayed)

    def _match(
        self, ctx: FactorContext, assoc: Association, code: str, params: totp.TotpParams
    ) -> int | None:
        return codes.matching_step(ctx, open_secret(ctx.rt.master_key, assoc), code, params)

    def _accept_once(self, ctx: FactorContext, assoc: Association, step: int) -> bool:
        # on the table, not through the ORM: nothing in this session reads the counter (or
        # when the app was last used) back
        won = ctx.session.connection().scalar(
            _TAKE_STEP, {"app_id": assoc.id, "step": step, "used_at": ctx.now}
        )
        return won is not None
