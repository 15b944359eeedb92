"""The words the service stores: statuses, roles and kinds, one StrEnum each.

Each value is the string the database has always held (the columns store these strings, so
no migration changes a stored value); code compares members, never the bare strings. The
three things that used to share the name "method" are told apart here:

- ``MethodKind``: the kind of an *authentication method* (an association bound to a card);
- ``SignInRoute``: where a sign-in *starts* (what the holder typed or presented first);
- a second factor's own name (``services/signin/factors``), which the engine records
  after the route as ``route+factor`` on the card session.
"""

from __future__ import annotations

from enum import StrEnum


class CardStatus(StrEnum):
    """A virtual card's life: blank → issued → enrolled → active, locked, suspended, revoked."""

    #: a virtual card in an RA's reader, being personalised by a card management system
    BLANK = "blank"
    ISSUED = "issued"
    ENROLLED = "enrolled"
    ACTIVE = "active"
    LOCKED = "locked"
    #: certificates on hold (certificateHold) until an RA lifts it; cannot sign in
    SUSPENDED = "suspended"
    REVOKED = "revoked"

    @property
    def is_live(self) -> bool:
        """Everything but revoked: a person has at most one live card."""
        return self is not CardStatus.REVOKED

    @property
    def is_awaiting_enrolment(self) -> bool:
        """Issued by an RA and not yet set up by its holder (invitations, enrolment)."""
        return self in (CardStatus.ISSUED, CardStatus.ENROLLED)

    @property
    def is_lockable(self) -> bool:
        """An RA may lock a card that has been issued and is not already locked or revoked."""
        return self in (CardStatus.ISSUED, CardStatus.ENROLLED, CardStatus.ACTIVE)


class RaPermission(StrEnum):
    """What an RA role lets its holder do in one organisation (the NHS RA model, issue 19).

    Every vRA Manager page and RA API endpoint names exactly one of these; the authorisation
    matrix test reads them from the routes, so a new route cannot go unchecked.
    """

    #: find people and read their page (cards, methods, recent events)
    VIEW_PEOPLE = "view_people"
    #: add people (one by one, by CSV, from another organisation) and record leavers
    MANAGE_PEOPLE = "manage_people"
    #: issue, enrol, invite, lock, unlock, suspend, revoke; associate and remove methods
    MANAGE_CARDS = "manage_cards"
    #: approve that a person may be issued a card (the sponsor's one power)
    APPROVE_CARDS = "approve_cards"
    #: read the organisation's audit log
    READ_AUDIT = "read_audit"
    #: give and take away RA roles, approve other managers' grants
    GRANT_ROLES = "grant_roles"
    #: the organisation's settings and networks
    MANAGE_SETTINGS = "manage_settings"


class RaRole(StrEnum):
    """Roles an RA user holds per organisation (the NHS RA model: manager, agent, sponsor,
    auditor)."""

    RA_MANAGER = "ra_manager"  # everything, including granting roles and settings
    RA_AGENT = "ra_agent"  # people, cards, methods; no role grants, no settings
    SPONSOR = "sponsor"  # approves a card for a person, nothing else
    AUDITOR = "auditor"  # read-only: people, cards, the audit log

    @property
    def is_alerted(self) -> bool:
        """Roles told of a card's security events (the auditor only reads, the sponsor only
        approves)."""
        return self in (RaRole.RA_MANAGER, RaRole.RA_AGENT)

    @property
    def permissions(self) -> frozenset[RaPermission]:
        """What this role may do in its organisation."""
        return _PERMISSIONS[self]

    def allows(self, permission: RaPermission) -> bool:
        return permission in _PERMISSIONS[self]

    @property
    def label(self) -> str:
        """The role in words, as pages show it."""
        return {
            RaRole.RA_MANAGER: "RA manager",
            RaRole.RA_AGENT: "RA agent",
            RaRole.SPONSOR: "Sponsor",
            RaRole.AUDITOR: "Auditor",
        }[self]


def roles_allowed(permission: RaPermission) -> tuple[str, ...]:
    """The roles that hold ``permission`` (what a session's chosen role is checked against)."""
    return tuple(role.value for role in RaRole if role.allows(permission))


_PERMISSIONS: dict[RaRole, frozenset[RaPermission]] = {
    RaRole.RA_MANAGER: frozenset(RaPermission),
    RaRole.RA_AGENT: frozenset(
        {
            RaPermission.VIEW_PEOPLE,
            RaPermission.MANAGE_PEOPLE,
            RaPermission.MANAGE_CARDS,
            RaPermission.READ_AUDIT,
        }
    ),
    RaRole.SPONSOR: frozenset({RaPermission.APPROVE_CARDS}),
    RaRole.AUDITOR: frozenset({RaPermission.VIEW_PEOPLE, RaPermission.READ_AUDIT}),
}


class RoleGrantStatus(StrEnum):
    """A role grant waiting for a second RA manager (when the organisation's policy asks for
    one): pending until approved or refused."""

    PENDING = "pending"
    APPROVED = "approved"
    REFUSED = "refused"


class MethodKind(StrEnum):
    """The kind of an authentication method (association) bound to a card."""

    AD_ACCOUNT = "ad_account"
    TOTP = "totp"
    AUTHENTICATOR = "authenticator"
    #: stored as "fido2" since the first release; called a security key everywhere else
    SECURITY_KEY = "fido2"
    MIA = "mia"
    HR_CARD = "hr_card"

    @property
    def has_public_identifier(self) -> bool:
        """Methods whose lookup key an RA may see (an AD name, an HR card's UID)."""
        return self in (MethodKind.AD_ACCOUNT, MethodKind.HR_CARD)


class MethodStatus(StrEnum):
    """An authentication method is pending until confirmed (a TOTP app), then active."""

    PENDING = "pending"
    ACTIVE = "active"


class SignInRoute(StrEnum):
    """Where a sign-in starts: what the holder typed or presented first.

    An organisation's policy allows routes (``allowed_methods`` in its stored JSON).
    """

    AD_ACCOUNT = "ad_account"
    EMAIL = "email"
    QR = "qr"
    #: stored as "fido2": a sign-in that starts from the holder's security key
    SECURITY_KEY = "fido2"
    HR_CARD = "hr_card"
    MIA = "mia"


class NotificationStatus(StrEnum):
    """A message in the outbox: pending → sending (claimed) → sent, or failed for good."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class AuthState(StrEnum):
    """Where an authentication transaction stands (``AuthTransaction.state``)."""

    #: passcode accepted at sign-in or for a reset; a second factor is awaited
    SECOND_FACTOR = "second_factor"
    #: a passcode reset whose identity is proven; the new passcode is awaited
    NEW_PASSCODE = "new_passcode"
    #: an invitation's text-message code is awaited before enrolment
    ENROL = "enrol"
    FAILED = "failed"


class AppletOrigin(StrEnum):
    """How a card's PIV applet was written (DESIGN §3.8): one applet, two ways to fill it."""

    #: a card management system personalised a blank card through an RA's reader
    PCSC = "pcsc"
    #: built by the service from the keys and certificates it issued (API, CLI, vRA Manager)
    SERVICE = "service"
