"""An organisation's policy (DESIGN §3.6): which methods, which keys, how long sessions live.

Stored as JSON on the organisation; read through ``OrganisationPolicy.from_dict`` so that an
unknown or ill-typed setting is refused rather than silently ignored.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from cardvault.domain.vocabulary import SignInRoute
from cardvault.errors import InvalidInput
from cardvault.json_types import JsonObject

#: stored as ``allowed_methods``: the sign-in routes an organisation allows
ALL_METHODS: tuple[str, ...] = tuple(SignInRoute)
KEY_ALGORITHMS = ("rsa2048", "rsa3072", "ecp256")
#: the second-factor plug-ins a policy may name in ``second_factors`` (issue 21): the paired
#: phone (push, or its own code when offline), an authenticator app's code, a security key,
#: the tap of an HR card
SECOND_FACTORS = ("authenticator", "totp", "fido2", "hr_card")
DEFAULT_SUBJECT_TEMPLATE = "CN={common_name},serialNumber={user_id},O={organisation_name}"


@dataclass(frozen=True, kw_only=True)
class OrganisationPolicy:
    allowed_methods: tuple[str, ...] = ALL_METHODS
    key_algorithm: str = "rsa2048"
    subject_template: str = DEFAULT_SUBJECT_TEMPLATE
    fido2_user_verification_required: bool = True
    fido2_allowed_aaguids: tuple[str, ...] | None = None
    hr_cards_allowed: bool = True
    recovery_requires_second_factor: bool = True
    session_absolute_minutes: int = 12 * 60
    session_idle_minutes: int = 60
    reset_link_minutes: int = 30
    invitation_link_days: int = 7
    totp_window: int = 1
    ra_contact: str = "your Registration Authority"
    #: how long card certificates last (DESIGN §3.9), and how long before expiry the
    #: holder is told and the card shows in the RA's expiry report
    certificate_days: int = 1095
    renew_days: int = 30
    #: the second factors a sign-in may offer (None: every one installed)
    second_factors: tuple[str, ...] | None = None
    #: a role grant to someone else waits for a second RA manager (issue 19)
    role_grants_need_approval: bool = False
    #: an RA may issue a card only to a person a sponsor has approved
    cards_need_sponsor_approval: bool = False
    #: how long a person who left every organisation is kept before erasure (GDPR)
    leaver_retention_days: int = 365
    #: the shortest card PIN a holder may set (PIV allows 6 to 8 digits)
    card_pin_min_length: int = 6
    #: holders may pair another phone or register another security key on "My card"
    holders_add_methods: bool = True
    #: an invitation may end without a second factor: the RA associates one in person
    in_person_methods: bool = False
    #: cards get a key-management key (PIV 9D) and an encryption certificate, for S/MIME
    key_management: bool = False
    extra: JsonObject = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.allowed_methods) - set(ALL_METHODS)
        if unknown:
            raise InvalidInput(f"Unknown authentication methods: {', '.join(sorted(unknown))}.")
        if self.key_algorithm not in KEY_ALGORITHMS:
            raise InvalidInput(f"key_algorithm must be one of {', '.join(KEY_ALGORITHMS)}.")
        if not 5 <= self.session_absolute_minutes <= 7 * 24 * 60:
            raise InvalidInput("session_absolute_minutes must be between 5 and 10080.")
        if not 1 <= self.session_idle_minutes <= self.session_absolute_minutes:
            raise InvalidInput("session_idle_minutes must be between 1 and the absolute lifetime.")
        if not 5 <= self.reset_link_minutes <= 24 * 60:
            raise InvalidInput("reset_link_minutes must be between 5 and 1440.")
        if not 1 <= self.certificate_days <= 3650:
            raise InvalidInput("certificate_days must be between 1 and 3650.")
        if not 1 <= self.renew_days < self.certificate_days:
            raise InvalidInput("renew_days must be at least 1 and below certificate_days.")
        if not set(self.second_factors or ()) <= set(SECOND_FACTORS):
            raise InvalidInput(f"second_factors may name only {', '.join(SECOND_FACTORS)}.")
        if not 0 <= self.leaver_retention_days <= 3650:
            raise InvalidInput("leaver_retention_days must be between 0 and 3650.")
        if not 6 <= self.card_pin_min_length <= 8:
            raise InvalidInput("card_pin_min_length must be between 6 and 8 digits.")
        if not 0 <= self.totp_window <= 3:
            raise InvalidInput("totp_window must be between 0 and 3 time steps.")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> OrganisationPolicy:
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InvalidInput(f"Unknown policy settings: {', '.join(sorted(unknown))}.")
        for name in ("allowed_methods", "fido2_allowed_aaguids", "second_factors"):
            if data.get(name) is not None:
                data[name] = tuple(data[name])
        try:
            return cls(**data)
        except TypeError as exc:
            raise InvalidInput(f"The policy is not valid: {exc}.") from exc

    def as_dict(self) -> JsonObject:
        out = asdict(self)
        out["allowed_methods"] = list(self.allowed_methods)
        if self.fido2_allowed_aaguids is not None:
            out["fido2_allowed_aaguids"] = list(self.fido2_allowed_aaguids)
        if self.second_factors is not None:
            out["second_factors"] = list(self.second_factors)
        return out

    def same_recovery_rules(self, other: OrganisationPolicy) -> bool:
        """Whether a passcode reset would follow the same rules under ``other`` (issue 21:
        a reset's push goes to the phones of every organisation whose rules agree with the
        card's own)."""
        return (
            self.recovery_requires_second_factor == other.recovery_requires_second_factor
            and self.reset_link_minutes == other.reset_link_minutes
        )

    def allows_factor(self, method: str) -> bool:
        """A second-factor plug-in may be offered at sign-in (``second_factors``)."""
        return self.second_factors is None or method in self.second_factors

    def allows(self, route: str) -> bool:
        """A sign-in route (or the second factor of the same name) is allowed."""
        if route == SignInRoute.HR_CARD and not self.hr_cards_allowed:
            return False
        return route in self.allowed_methods
