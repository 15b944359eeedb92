"""Second factors installed in this service; a new method is one more entry here."""

from __future__ import annotations

from cardvault.services.signin.factors.authenticator import AuthenticatorFactor
from cardvault.services.signin.factors.base import (
    CodeOffer,
    FactorAnswer,
    FactorContext,
    FactorError,
    FactorOutcome,
    HrCardOffer,
    Offer,
    PushOffer,
    SecondFactor,
    SecurityKeyOffer,
)
from cardvault.services.signin.factors.fido2 import SecurityKeyFactor
from cardvault.services.signin.factors.hr_card import HrCardFactor
from cardvault.services.signin.factors.totp import TotpFactor

__all__ = [
    "CodeOffer",
    "FactorAnswer",
    "FactorContext",
    "FactorError",
    "FactorOutcome",
    "HrCardOffer",
    "Offer",
    "PushOffer",
    "SecondFactor",
    "SecurityKeyOffer",
    "installed",
]


def installed() -> dict[str, SecondFactor]:
    """The second factors this service offers, by method name."""
    factors: list[SecondFactor] = [
        TotpFactor(),
        AuthenticatorFactor(),
        SecurityKeyFactor(),
        HrCardFactor(),
    ]
    return {f.method: f for f in factors}
