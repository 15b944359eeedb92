"""TOTP from an authenticator app (RFC 6238) as a second factor.

Each time step is accepted once per authenticator: the accepted step is written with a
conditional UPDATE (``counter < step``), so of any number of concurrent submissions of the
same code exactly one succeeds, on any number of server instances.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select, update

from cardvault.domain import totp
from cardvault.domain.org_policy import OrganisationPolicy
from cardvault.errors import CardvaultError
from cardvault.services.factors.base import FactorContext, FactorFailed, FactorOutcome
from cardvault.services.methods import open_secret
from cardvault.store.models import Association, MethodKind


class TotpFactor:
    method = "totp"

    def _associations(self, ctx: FactorContext) -> list[Association]:
        return list(
            ctx.session.scalars(
                select(Association).where(
                    Association.card_id == ctx.card.id,
                    Association.organisation_id == ctx.organisation.id,
                    Association.method == MethodKind.TOTP.value,
                    Association.status == "active",
                )
            )
        )

    def offer(self, ctx: FactorContext) -> dict[str, Any] | None:
        return {"method": self.method, "digits": totp.DIGITS} if self._associations(ctx) else None

    def verify(self, ctx: FactorContext, response: Mapping[str, Any]) -> FactorOutcome:
        code = response.get("code")
        if not isinstance(code, str):
            raise FactorFailed(
                "Enter the 6-digit code from your authenticator app.", reason="TOTP code missing"
            )
        params = totp.TotpParams(
            window=OrganisationPolicy.from_dict(ctx.organisation.policy).totp_window
        )
        replayed = False
        for assoc in self._associations(ctx):
            step = self._match(ctx, assoc, code, params)
            if step is None:
                continue
            if self._accept_once(ctx, assoc, step):
                assoc.last_used_at = ctx.now
                return FactorOutcome(
                    label=assoc.label or "authenticator",
                    details={"method": self.method, "association": assoc.id},
                )
            replayed = True
        if replayed:
            raise FactorFailed(
                "This code has already been used. Wait for the next code.",
                reason="TOTP code replayed",
                code="totp_replayed",
            )
        raise FactorFailed(
            "The code is not right. Check the time on your phone and try the newest code.",
            reason="TOTP code wrong",
            code="totp_wrong",
        )

    def _match(
        self, ctx: FactorContext, assoc: Association, code: str, params: totp.TotpParams
    ) -> int | None:
        secret = open_secret(ctx.rt.master_key, assoc)
        try:
            return totp.matching_step(secret.decode(), code, now=ctx.now.timestamp(), params=params)
        except totp.TotpWrong:
            return None
        except CardvaultError as exc:
            raise FactorFailed(exc.message, reason="TOTP code malformed") from exc
        finally:
            secret[:] = bytes(len(secret))

    def _accept_once(self, ctx: FactorContext, assoc: Association, step: int) -> bool:
        won = ctx.session.scalar(
            update(Association)
            .where(Association.id == assoc.id, Association.counter < step)
            .values(counter=step)
            .returning(Association.id)
        )
        return won is not None
