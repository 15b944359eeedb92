"""The tap of an HR card, for a sign-in that started from that card (DESIGN §3.2).

The methods table counts "the tap + passcode" as the HR card's factors. The UID named
the card already (``identification.by_hr_card``); here the client presents the same tap
again and it is matched, in constant time, against this card's HR cards in this
organisation. It is offered only for a sign-in that started from an HR card: a UID is
not a secret, so it must never stand in for a second factor after an email or AD account.
"""

from __future__ import annotations

import hmac

from cardvault.domain import identifiers
from cardvault.domain.vocabulary import MethodKind
from cardvault.errors import InvalidInput
from cardvault.services.signin.errors import FactorFailed
from cardvault.services.signin.factors.base import (
    FactorAnswer,
    FactorContext,
    FactorOutcome,
    HrCardOffer,
)


class HrCardFactor:
    """A tap of the HR card a sign-in started from (its UID is an identifier, not a secret)."""

    method: str = MethodKind.HR_CARD

    def offer(self, ctx: FactorContext) -> HrCardOffer | None:
        """Offered only to a sign-in that started from an HR card, when the policy allows it."""
        if ctx.route != self.method:
            return None
        if not ctx.organisation.policy.allows(self.method):
            return None
        return HrCardOffer(method=self.method) if ctx.store.hr_cards() else None

    def verify(self, ctx: FactorContext, answer: FactorAnswer) -> FactorOutcome:
        """Check the tapped UID against the card's HR cards; raises FactorFailed."""
        try:
            uid = identifiers.hr_card_uid(answer.uid or "")
        except InvalidInput as exc:
            raise FactorFailed(exc.message, reason="HR card UID malformed", counts=False) from exc
        match = None
        for assoc in ctx.store.hr_cards():
            if hmac.compare_digest(assoc.lookup_key.encode(), uid.encode()):
                match = assoc
        if match is None:
            raise FactorFailed(
                "This is not the HR card this sign-in started with.",
                reason="HR card UID does not match",
                code="hr_card_mismatch",
            )
        ctx.store.hr_card_used(match.id)
        return FactorOutcome(
            label=match.label or "HR card",
            details={"method": self.method, "association": match.id, "label": match.label},
        )
