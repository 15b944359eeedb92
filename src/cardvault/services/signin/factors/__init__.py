"""Second factors installed in this service; a new method is one more entry here."""

from __future__ import annotations

from cardvault.services.signin.factors.authenticator import AuthenticatorFactor
from cardvault.services.signin.factors.base import FactorContext, FactorOutcome, SecondFactor
from cardvault.services.signin.factors.fido2 import SecurityKeyFactor
from cardvault.services.signin.factors.hr_card import HrCardFactor
from cardvault.services.signin.factors.totp import TotpFactor

__all__ = ["FactorContext", "FactorOutcome", "SecondFactor", "installed"]


def installed() -> dict[str, SecondFactor]:
    factors: list[SecondFactor] = [
        TotpFactor(),
        AuthenticatorFactor(),
        SecurityKeyFactor(),
        HrCardFactor(),
    ]
    return {f.method: f for f in factors}
