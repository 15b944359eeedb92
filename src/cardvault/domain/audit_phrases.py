"""Audit actions in words: what an RA clerk reads for each action code the service records.

Every action the code records has an entry in ``ACTIONS``: the phrase for a success and,
where a failure reads differently, for a failure. A few actions read better with one of
their details or their reason ("Signed in with push", "Card locked: 3 wrong passcodes"):
those are in ``VARIANTS``. An action without an entry is still shown (``describe`` falls
back to the code made readable), but a test fails until it has a phrase, so a new action
cannot reach the vRA Manager unexplained.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cardvault.domain.lockout import (
    ATTEMPTS_LOCK_REASON,
    MAX_ATTEMPTS,
    MAX_SECOND_FACTOR_FAILURES,
    SECOND_FACTOR_LOCK_REASON,
)


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


ACTIONS: Mapping[str, Phrase] = {
    # signing in (the agent, the vRA Manager, QR and the mobile identity agent)
    "auth.login": _p("Sign-in started", "Sign-in refused"),
    "auth.passcode": _p("Passcode accepted at sign-in", "Wrong passcode at sign-in"),
    "auth.second_factor": _p("Signed in", "Second sign-in step failed"),
    "auth.qr_login": _p("Signed in with a QR code", "QR code sign-in refused"),
    "auth.mia": _p("Signed in with the mobile identity agent"),
    "session.opened": _p("Card session started"),
    "session.closed": _p("Signed out"),
    "fido2.sign_in": _p("Signed in with a security key", "Security key sign-in refused"),
    "fido2.clone_suspected": _p("Security key may have been copied"),
    "push.requested": _p("Sign-in request sent to the phone"),
    "push.answered": _p("Sign-in approved on the phone", "Sign-in request not approved"),
    "push.not_me_reported": _p("Holder reported a sign-in that was not theirs"),
    # wrong passcodes outside the sign-in (each counts toward the lock)
    "enrolment.passcode": _p("Issuance passcode accepted", "Wrong issuance passcode"),
    "device.pair.passcode": _p(
        "Passcode accepted to pair a phone", "Wrong passcode to pair a phone"
    ),
    "qr.passcode": _p("Passcode accepted for a QR sign-in", "Wrong passcode for a QR sign-in"),
    "mia.passcode": _p(
        "Passcode accepted in the mobile identity agent",
        "Wrong passcode in the mobile identity agent",
    ),
    "sign.passcode": _p("Passcode accepted to sign", "Wrong passcode to sign"),
    # the card's life
    "card.issued": _p("Card issued"),
    "card.issuance_started": _p("Card issuance started in a card reader"),
    "card.issuance_reopened": _p("Card changed by the card management system: issuance reopened"),
    "card.certificate_imported": _p("Certificate imported"),
    "card.certificate_replaced": _p("Certificate replaced"),
    "card.invited": _p("Invitation sent to finish setting up the card"),
    "invitation.code": _p("Text message code accepted", "Wrong text message code"),
    "card.enrolled": _p("Card set up by its holder"),
    "card.locked": _p("Card locked"),
    "card.second_factor_limit": _p(
        f"Second sign-in step wrong {MAX_SECOND_FACTOR_FAILURES} times in a row: RA staff alerted"
    ),
    "card.unlocked": _p("Card unlocked"),
    "card.revoked": _p("Card revoked"),
    "card.suspended": _p("Card suspended (certificates on hold)"),
    "card.resumed": _p("Card suspension lifted"),
    "card.renewed": _p("Card certificates renewed"),
    "card.certified": _p("Key on the card certified by the CA"),
    "card.passcode_reset": _p("Passcode reset on the portal"),
    # using the card's keys
    "card.signed": _p("Card used to sign", "Card refused to sign"),
    "card.decrypted": _p("Card used to decrypt"),
    "card.key_agreed": _p("Card used for a key agreement"),
    # the self-service portal
    "portal.reset_requested": _p("Reset link asked for", "Reset link asked for, none sent"),
    "portal.reset_link": _p("Passcode reset link sent", "Passcode reset link not sent"),
    "recovery.answers": _p("Security questions answered", "Wrong answers to security questions"),
    "recovery.second_factor": _p(
        "Identity confirmed to reset the passcode", "Second step of a passcode reset failed"
    ),
    # ways to sign in
    "method.added": _p("Sign-in method added"),
    "method.confirmed": _p("Authenticator app confirmed"),
    "method.removed": _p("Sign-in method removed"),
    "method.fido2_registration": _p("Security key registered", "Security key registration refused"),
    "device.pairing_created": _p("Phone pairing code shown"),
    "device.paired": _p("Phone paired"),
    "device.revoked": _p("Phone removed"),
    "device.request": _p("Request from a phone", "Request from a phone refused"),
    # the card in a PC/SC reader (the card's PIN and administration)
    "piv.card_inserted": _p("Card connected to a card reader"),
    "piv.card_removed": _p("Card removed from the card reader"),
    "piv.verify": _p("Card PIN accepted", "Wrong card PIN"),
    "piv.blocked": _p("Card PIN blocked"),
    "piv.piv_pin_changed": _p("Card PIN changed"),
    "piv.global_pin_changed": _p("Card's global PIN changed"),
    "piv.puk_changed": _p("Card PUK changed"),
    "piv.pin_reset": _p("Card PIN reset with the PUK"),
    "piv.management_authenticated": _p("Card management key accepted", "Wrong card management key"),
    "piv.management_key_changed": _p("Card management key changed"),
    "piv.key_generated": _p("Key generated on the card"),
    "piv.object_written": _p("Data written to the card"),
    # messages
    "notification.sent": _p("Message sent"),
    "notification.failed": _p("Message could not be delivered"),
    # the directory and the service
    "organisation.created": _p("Organisation created"),
    "organisation.policy_changed": _p("Organisation's rules changed"),
    "organisation.networks_changed": _p("Organisation's networks changed"),
    "ingress.refused": _p("Request from outside every organisation's networks refused"),
    "person.created": _p("Person added"),
    "person.membership_added": _p("Person joined the organisation"),
    "ra.role_granted": _p("RA role given"),
    "ra.role_revoked": _p("RA role taken away"),
    "ra.role_selected": _p("Started working in the vRA Manager"),
    "service.initialised": _p("Service set up"),
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

VARIANTS: Mapping[str, Variant] = {
    "auth.second_factor": Variant(key="method", phrases=_SIGNED_IN_WITH),
    "recovery.second_factor": Variant(key="method", phrases=_CONFIRMED_WITH),
    "card.locked": Variant(
        key="reason",
        phrases={
            ATTEMPTS_LOCK_REASON: f"Card locked: {MAX_ATTEMPTS} wrong passcodes",
            SECOND_FACTOR_LOCK_REASON: (
                f"Card locked: {MAX_SECOND_FACTOR_FAILURES} wrong second sign-in steps"
            ),
        },
    ),
    "method.added": Variant(key="method", phrases=_ADDED),
    "method.removed": Variant(key="method", phrases=_REMOVED),
}


def describe(
    action: str,
    outcome: str = "success",
    *,
    reason: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> str:
    """The phrase for one event; an unknown action reads as its code made readable."""
    variant = VARIANTS.get(action)
    if variant is not None and outcome == variant.outcome:
        value = reason if variant.key == "reason" else (details or {}).get(variant.key)
        if isinstance(value, str) and value in variant.phrases:
            return variant.phrases[value]
    phrase = ACTIONS.get(action)
    if phrase is None:
        return fallback(action)
    return phrase.for_outcome(outcome)


def fallback(action: str) -> str:
    """``card.new_thing`` reads "Card: new thing" until it has a phrase of its own."""
    head, _, rest = action.partition(".")
    words = rest.replace("_", " ").replace(".", " ").strip()
    label = head.replace("_", " ").strip().capitalize() or "Event"
    return f"{label}: {words}" if words else label
