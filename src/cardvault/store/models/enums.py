"""The statuses, roles and kinds the columns hold."""

from __future__ import annotations

from enum import StrEnum


class CardStatus(StrEnum):
    #: a virtual card in an RA's reader, being personalised by a card management system
    BLANK = "blank"
    ISSUED = "issued"
    ENROLLED = "enrolled"
    ACTIVE = "active"
    LOCKED = "locked"
    REVOKED = "revoked"


class RaRole(StrEnum):
    """Roles an RA user holds per organisation (the original product's RA roles)."""

    RA_MANAGER = "ra_manager"  # everything, including granting roles
    RA_AGENT = "ra_agent"  # issue, enrol, associate, lock/unlock
    AUDITOR = "auditor"  # read the audit log only


class MethodKind(StrEnum):
    AD_ACCOUNT = "ad_account"
    TOTP = "totp"
    AUTHENTICATOR = "authenticator"
    FIDO2 = "fido2"
    MIA = "mia"
    HR_CARD = "hr_card"
