"""Audit actions in words: what an RA clerk reads for each action code the service records.

Every ``AuditAction`` has an entry in ``ACTIONS``: the phrase for a success and,
where a failure reads differently, for a failure. A few actions read better with one of
their details or their reason ("Signed in with push", "Card locked: 3 wrong passcodes"):
those are in ``VARIANTS``. A code this version does not record (an older
release's) is still shown, as the code made readable; a member without a phrase fails a
test, so a new action cannot reach the vRA Manager unexplained.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.lockout import (
    ATTEMPTS_LOCK_REASON,
    MAX_ATTEMPTS,
    MAX_SECOND_FACTOR_FAILURES,
    SECOND_FACTOR_LOCK_REASON,
)
from cardvault.json_types import JsonValue


@dataclass(frozen=True, kw_only=True)
class Phrase:
    """How one action reads; ``failure`` when a refused attempt reads differently."""

    success: str
    failure: str | None = None

    def for_outcome(self, outcome: str) -> str:
        return self.failure if outcome == "failure" and self.failure else self.success


@dataclass(frozen=True, kw_only=True)
class Variant:
    """Phrases chosen by a detail's value (or by ``reason`` when ``key`` is "reason")."""

    key: str
    phrases: Mapping[str, str]
    outcome: str = "success"


def _p(success: str, failure: str | None = None) -> Phrase:
    return Phrase(success=success, failure=failure)


ACTIONS: Mapping[AuditAction, Phrase] = {
    # signing in (the agent, the vRA Manager, QR and the mobile identity agent)
    AuditAction.AUTH_LOGIN: _p("Sign-in started", "Sign-in refused"),
    AuditAction.AUTH_PASSCODE: _p("Passcode accepted at sign-in", "Wrong passcode at sign-in"),
    AuditAction.AUTH_SECOND_FACTOR: _p("Signed in", "Second sign-in step failed"),
    AuditAction.AUTH_ORGANISATION_CHOSEN: _p("Organisation chosen at sign-in"),
    AuditAction.AUTH_QR_LOGIN: _p("Signed in with a QR code", "QR code sign-in refused"),
    AuditAction.AUTH_MIA: _p("Signed in with the mobile identity agent"),
    AuditAction.SESSION_OPENED: _p("Card session started"),
    AuditAction.SESSION_CLOSED: _p("Signed out"),
    AuditAction.SECURITY_KEY_SIGN_IN: _p(
        "Signed in with a security key", "Security key sign-in refused"
    ),
    AuditAction.SECURITY_KEY_CLONE_SUSPECTED: _p("Security key may have been copied"),
    AuditAction.PUSH_REQUESTED: _p("Sign-in request sent to the phone"),
    AuditAction.PUSH_ANSWERED: _p("Sign-in approved on the phone", "Sign-in request not approved"),
    AuditAction.PUSH_NOT_ME_REPORTED: _p("Holder reported a sign-in that was not theirs"),
    AuditAction.PUSH_CLOSED: _p("Request on the phone closed: answered another way"),
    # wrong passcodes outside the sign-in (each counts toward the lock)
    AuditAction.ENROLMENT_PASSCODE: _p("Issuance passcode accepted", "Wrong issuance passcode"),
    AuditAction.DEVICE_PAIR_PASSCODE: _p(
        "Passcode accepted to pair a phone", "Wrong passcode to pair a phone"
    ),
    AuditAction.QR_PASSCODE: _p(
        "Passcode accepted for a QR sign-in", "Wrong passcode for a QR sign-in"
    ),
    AuditAction.MIA_PASSCODE: _p(
        "Passcode accepted in the mobile identity agent",
        "Wrong passcode in the mobile identity agent",
    ),
    AuditAction.SIGN_PASSCODE: _p("Passcode accepted to sign", "Wrong passcode to sign"),
    # the card's life
    AuditAction.CARD_ISSUED: _p("Card issued"),
    AuditAction.CARD_ISSUANCE_STARTED: _p("Card issuance started in a card reader"),
    AuditAction.CARD_ISSUANCE_REOPENED: _p(
        "Card changed by the card management system: issuance reopened"
    ),
    AuditAction.CARD_CERTIFICATE_IMPORTED: _p("Certificate imported"),
    AuditAction.CARD_CERTIFICATE_REPLACED: _p("Certificate replaced"),
    AuditAction.CARD_INVITED: _p("Invitation sent to finish setting up the card"),
    AuditAction.INVITATION_CODE: _p("Text message code accepted", "Wrong text message code"),
    AuditAction.CARD_ENROLLED: _p("Card set up by its holder"),
    AuditAction.CARD_LOCKED: _p("Card locked"),
    AuditAction.CARD_SECOND_FACTOR_LIMIT: _p(
        f"Second sign-in step wrong {MAX_SECOND_FACTOR_FAILURES} times in a row: RA staff alerted"
    ),
    AuditAction.CARD_UNLOCKED: _p("Card unlocked"),
    AuditAction.CARD_REVOKED: _p("Card revoked"),
    AuditAction.CARD_SUSPENDED: _p("Card suspended (certificates on hold)"),
    AuditAction.CARD_RESUMED: _p("Card suspension lifted"),
    AuditAction.CARD_RENEWED: _p("Card certificates renewed"),
    AuditAction.CARD_CERTIFIED: _p("Key on the card certified by the CA"),
    AuditAction.CARD_KEY_MANAGEMENT_ADDED: _p("Encryption key and certificate added to the card"),
    AuditAction.CARD_PASSCODE_RESET: _p("Passcode reset on the portal"),
    AuditAction.HOLDER_PASSCODE: _p(
        "Current passcode confirmed on My card", "Wrong current passcode on My card"
    ),
    AuditAction.CARD_PASSCODE_CHANGED: _p("Passcode changed by the holder"),
    AuditAction.CARD_QUESTIONS_CHANGED: _p("Security questions changed by the holder"),
    AuditAction.CARD_RECOVERY_CODE_RENEWED: _p("New recovery code made by the holder"),
    AuditAction.CARD_SECOND_FACTOR_IN_PERSON: _p(
        "Holder will get a second factor from the RA in person"
    ),
    # using the card's keys
    AuditAction.CARD_SIGNED: _p("Card used to sign", "Card refused to sign"),
    AuditAction.CARD_DECRYPTED: _p("Card used to decrypt"),
    AuditAction.CARD_KEY_AGREED: _p("Card used for a key agreement"),
    # the self-service portal
    AuditAction.PORTAL_RESET_REQUESTED: _p(
        "Reset link asked for", "Reset link asked for, none sent"
    ),
    AuditAction.PORTAL_RESET_LINK: _p("Passcode reset link sent", "Passcode reset link not sent"),
    AuditAction.RECOVERY_ANSWERS: _p(
        "Security questions answered", "Wrong answers to security questions"
    ),
    AuditAction.RECOVERY_SECOND_FACTOR: _p(
        "Identity confirmed to reset the passcode", "Second step of a passcode reset failed"
    ),
    # ways to sign in
    AuditAction.METHOD_ADDED: _p("Sign-in method added"),
    AuditAction.METHOD_CONFIRMED: _p("Authenticator app confirmed"),
    AuditAction.METHOD_REMOVED: _p("Sign-in method removed"),
    AuditAction.SECURITY_KEY_REGISTRATION: _p(
        "Security key registered", "Security key registration refused"
    ),
    AuditAction.DEVICE_PAIRING_CREATED: _p("Phone pairing code shown"),
    AuditAction.DEVICE_PAIRED: _p("Phone paired"),
    AuditAction.DEVICE_REVOKED: _p("Phone removed"),
    AuditAction.DEVICE_REQUEST: _p("Request from a phone", "Request from a phone refused"),
    # the card in a PC/SC reader (the card's PIN and administration)
    AuditAction.PIV_CARD_INSERTED: _p("Card connected to a card reader"),
    AuditAction.PIV_CARD_REMOVED: _p("Card removed from the card reader"),
    AuditAction.PIV_VERIFY: _p("Card PIN accepted", "Wrong card PIN"),
    AuditAction.PIV_BLOCKED: _p("Card PIN blocked"),
    AuditAction.PIV_PIV_PIN_CHANGED: _p("Card PIN changed"),
    AuditAction.PIV_GLOBAL_PIN_CHANGED: _p("Card's global PIN changed"),
    AuditAction.PIV_PUK_CHANGED: _p("Card PUK changed"),
    AuditAction.PIV_PIN_RESET: _p("Card PIN reset with the PUK"),
    AuditAction.PIV_APPLET_BUILT: _p("Card made ready for smartcard software"),
    AuditAction.PIV_PIN_SET: _p("Card PIN set", "Card PIN not set"),
    AuditAction.PIV_PIN_UNBLOCKED: _p("Card PIN unblocked after a new sign-in"),
    AuditAction.PIV_MANAGEMENT_AUTHENTICATED: _p(
        "Card management key accepted", "Wrong card management key"
    ),
    AuditAction.PIV_MANAGEMENT_KEY_CHANGED: _p("Card management key changed"),
    AuditAction.PIV_KEY_GENERATED: _p("Key generated on the card"),
    AuditAction.PIV_OBJECT_WRITTEN: _p("Data written to the card"),
    # messages
    AuditAction.NOTIFICATION_SENT: _p("Message sent"),
    AuditAction.NOTIFICATION_FAILED: _p("Message could not be delivered"),
    # the directory and the service
    AuditAction.ORGANISATION_CREATED: _p("Organisation created"),
    AuditAction.ORGANISATION_POLICY_CHANGED: _p("Organisation's rules changed"),
    AuditAction.ORGANISATION_NETWORKS_CHANGED: _p("Organisation's networks changed"),
    AuditAction.INGRESS_REFUSED: _p("Request from outside every organisation's networks refused"),
    AuditAction.PERSON_CREATED: _p("Person added"),
    AuditAction.PERSON_MEMBERSHIP_ADDED: _p("Person joined the organisation"),
    AuditAction.PERSON_LEFT: _p("Person left the organisation"),
    AuditAction.PERSON_ERASED: _p("Person's data erased after the retention period"),
    AuditAction.CARD_APPROVED: _p("Card approved by a sponsor"),
    AuditAction.RA_ROLE_REQUESTED: _p("RA role asked for, waiting for a second RA manager"),
    AuditAction.RA_ROLE_REQUEST_REFUSED: _p("RA role request refused"),
    AuditAction.RA_ROLE_GRANTED: _p("RA role given"),
    AuditAction.RA_ROLE_REVOKED: _p("RA role taken away"),
    AuditAction.RA_ROLE_SELECTED: _p("Started working in the vRA Manager"),
    AuditAction.SERVICE_INITIALISED: _p("Service set up"),
    AuditAction.KEY_MASTER_ROTATION_STARTED: _p("Master key rotation started"),
    AuditAction.KEY_MASTER_ROTATED: _p("Master key rotated"),
    AuditAction.KEY_TRANSPORT_ADDED: _p("Transport key added"),
    AuditAction.KEY_TRANSPORT_RETIRED: _p("Transport key retired"),
    AuditAction.KEY_CA_ROTATED: _p("Issuing CA rotated"),
    AuditAction.KEY_AUDIT_ROTATED: _p("Audit signing key rotated"),
    AuditAction.KEY_CA_RETIRED: _p("Key of a rotated CA retired"),
    AuditAction.AUDIT_RESTORE_ACKNOWLEDGED: _p("Restore of the audit trail acknowledged"),
}

#: ``auth.second_factor`` and ``recovery.second_factor`` name the factor that answered
_SIGNED_IN_WITH = {
    "push": "Signed in with push",
    "device_totp": "Signed in with a code from the phone app",
    "totp": "Signed in with an authenticator code",
    "fido2": "Signed in with a security key",
    "hr_card": "Signed in with an HR card",
}
_CONFIRMED_WITH = {
    "push": "Passcode reset confirmed with push",
    "device_totp": "Passcode reset confirmed with a code from the phone app",
    "totp": "Passcode reset confirmed with an authenticator code",
    "fido2": "Passcode reset confirmed with a security key",
}
#: ``method.added`` and ``method.removed`` name the kind of method
_ADDED = {
    "ad_account": "Windows account added",
    "totp": "Authenticator app added",
    "fido2": "Security key registered",
    "hr_card": "HR card added",
}
_REMOVED = {
    "ad_account": "Windows account removed",
    "totp": "Authenticator app removed",
    "fido2": "Security key removed",
    "hr_card": "HR card removed",
}

VARIANTS: Mapping[AuditAction, Variant] = {
    AuditAction.AUTH_SECOND_FACTOR: Variant(key="method", phrases=_SIGNED_IN_WITH),
    AuditAction.RECOVERY_SECOND_FACTOR: Variant(key="method", phrases=_CONFIRMED_WITH),
    AuditAction.CARD_LOCKED: Variant(
        key="reason",
        phrases={
            ATTEMPTS_LOCK_REASON: f"Card locked: {MAX_ATTEMPTS} wrong passcodes",
            SECOND_FACTOR_LOCK_REASON: (
                f"Card locked: {MAX_SECOND_FACTOR_FAILURES} wrong second sign-in steps"
            ),
        },
    ),
    AuditAction.METHOD_ADDED: Variant(key="method", phrases=_ADDED),
    AuditAction.METHOD_REMOVED: Variant(key="method", phrases=_REMOVED),
}


#: successful sign-in steps that a holder's own list of their card's use leaves out: each
#: only repeats the "Signed in with …" line that follows it
REPEATED_STEPS: frozenset[AuditAction] = frozenset(
    {AuditAction.AUTH_PASSCODE, AuditAction.SESSION_OPENED, AuditAction.HOLDER_PASSCODE}
)


def describe(
    action: str,
    outcome: str = "success",
    *,
    reason: str | None = None,
    details: Mapping[str, JsonValue] | None = None,
) -> str:
    """The phrase for one event; an unknown action reads as its code made readable."""
    known = AuditAction.of(action)
    if known is None:
        return fallback(action)
    variant = VARIANTS.get(known)
    if variant is not None and outcome == variant.outcome:
        value = reason if variant.key == "reason" else (details or {}).get(variant.key)
        if isinstance(value, str) and value in variant.phrases:
            return variant.phrases[value]
    return ACTIONS[known].for_outcome(outcome)


def fallback(action: str) -> str:
    """``card.new_thing`` reads "Card: new thing" until it has a phrase of its own."""
    head, _, rest = action.partition(".")
    words = rest.replace("_", " ").replace(".", " ").strip()
    label = head.replace("_", " ").strip().capitalize() or "Event"
    return f"{label}: {words}" if words else label
