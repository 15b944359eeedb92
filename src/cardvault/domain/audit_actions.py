"""The catalogue of audit actions: every action code the service records, one member each.

The values are the codes written into the audit chain (and hashed into it), so they never
change; a member's name may (``fido2.sign_in`` is ``SECURITY_KEY_SIGN_IN``). Recording takes
an ``AuditAction``, never a string, so an action cannot be recorded without being here, and
``domain/audit_phrases`` gives each member its words for the vRA Manager.
"""

from __future__ import annotations

from enum import StrEnum


class AuditAction(StrEnum):
    """What happened, as recorded in the audit chain (``AuditEvent.action``)."""

    # signing in (the agent, the vRA Manager, QR and the mobile identity agent)
    AUTH_LOGIN = "auth.login"
    AUTH_PASSCODE = "auth.passcode"
    AUTH_SECOND_FACTOR = "auth.second_factor"
    AUTH_ORGANISATION_CHOSEN = "auth.organisation_chosen"
    AUTH_QR_LOGIN = "auth.qr_login"
    AUTH_MIA = "auth.mia"
    SESSION_OPENED = "session.opened"
    SESSION_CLOSED = "session.closed"
    SECURITY_KEY_SIGN_IN = "fido2.sign_in"
    SECURITY_KEY_CLONE_SUSPECTED = "fido2.clone_suspected"
    PUSH_REQUESTED = "push.requested"
    PUSH_ANSWERED = "push.answered"
    PUSH_NOT_ME_REPORTED = "push.not_me_reported"
    PUSH_CLOSED = "push.closed"
    # wrong passcodes outside the sign-in (each counts toward the lock)
    ENROLMENT_PASSCODE = "enrolment.passcode"
    DEVICE_PAIR_PASSCODE = "device.pair.passcode"
    QR_PASSCODE = "qr.passcode"
    MIA_PASSCODE = "mia.passcode"
    SIGN_PASSCODE = "sign.passcode"
    # the card's life
    CARD_ISSUED = "card.issued"
    CARD_ISSUANCE_STARTED = "card.issuance_started"
    CARD_ISSUANCE_REOPENED = "card.issuance_reopened"
    CARD_CERTIFICATE_IMPORTED = "card.certificate_imported"
    CARD_CERTIFICATE_REPLACED = "card.certificate_replaced"
    CARD_INVITED = "card.invited"
    INVITATION_CODE = "invitation.code"
    CARD_ENROLLED = "card.enrolled"
    CARD_LOCKED = "card.locked"
    CARD_SECOND_FACTOR_LIMIT = "card.second_factor_limit"
    CARD_UNLOCKED = "card.unlocked"
    CARD_REVOKED = "card.revoked"
    CARD_SUSPENDED = "card.suspended"
    CARD_RESUMED = "card.resumed"
    CARD_RENEWED = "card.renewed"
    CARD_CERTIFIED = "card.certified"
    CARD_KEY_MANAGEMENT_ADDED = "card.key_management_added"
    CARD_PASSCODE_RESET = "card.passcode_reset"
    # the holder looks after their own card on the portal (issue 19)
    HOLDER_PASSCODE = "holder.passcode"
    CARD_PASSCODE_CHANGED = "card.passcode_changed"
    CARD_QUESTIONS_CHANGED = "card.security_questions_changed"
    CARD_RECOVERY_CODE_RENEWED = "card.recovery_code_renewed"
    CARD_SECOND_FACTOR_IN_PERSON = "card.second_factor_in_person"
    # using the card's keys
    CARD_SIGNED = "card.signed"
    CARD_DECRYPTED = "card.decrypted"
    CARD_KEY_AGREED = "card.key_agreed"
    # the self-service portal
    PORTAL_RESET_REQUESTED = "portal.reset_requested"
    PORTAL_RESET_LINK = "portal.reset_link"
    RECOVERY_ANSWERS = "recovery.answers"
    RECOVERY_SECOND_FACTOR = "recovery.second_factor"
    # ways to sign in
    METHOD_ADDED = "method.added"
    METHOD_CONFIRMED = "method.confirmed"
    METHOD_REMOVED = "method.removed"
    SECURITY_KEY_REGISTRATION = "method.fido2_registration"
    DEVICE_PAIRING_CREATED = "device.pairing_created"
    DEVICE_PAIRED = "device.paired"
    DEVICE_REVOKED = "device.revoked"
    DEVICE_REQUEST = "device.request"
    # the card in a PC/SC reader (the card's PIN and administration)
    PIV_CARD_INSERTED = "piv.card_inserted"
    PIV_CARD_REMOVED = "piv.card_removed"
    PIV_VERIFY = "piv.verify"
    PIV_BLOCKED = "piv.blocked"
    PIV_PIV_PIN_CHANGED = "piv.piv_pin_changed"
    PIV_GLOBAL_PIN_CHANGED = "piv.global_pin_changed"
    PIV_PUK_CHANGED = "piv.puk_changed"
    PIV_PIN_RESET = "piv.pin_reset"
    PIV_APPLET_BUILT = "piv.applet_built"
    PIV_PIN_SET = "piv.pin_set"
    PIV_PIN_UNBLOCKED = "piv.pin_unblocked"
    PIV_MANAGEMENT_AUTHENTICATED = "piv.management_authenticated"
    PIV_MANAGEMENT_KEY_CHANGED = "piv.management_key_changed"
    PIV_KEY_GENERATED = "piv.key_generated"
    PIV_OBJECT_WRITTEN = "piv.object_written"
    # messages
    NOTIFICATION_SENT = "notification.sent"
    NOTIFICATION_FAILED = "notification.failed"
    # the directory and the service
    ORGANISATION_CREATED = "organisation.created"
    ORGANISATION_POLICY_CHANGED = "organisation.policy_changed"
    ORGANISATION_NETWORKS_CHANGED = "organisation.networks_changed"
    INGRESS_REFUSED = "ingress.refused"
    PERSON_CREATED = "person.created"
    PERSON_MEMBERSHIP_ADDED = "person.membership_added"
    PERSON_LEFT = "person.left"
    PERSON_ERASED = "person.erased"
    CARD_APPROVED = "card.approved"
    RA_ROLE_REQUESTED = "ra.role_requested"
    RA_ROLE_REQUEST_REFUSED = "ra.role_request_refused"
    RA_ROLE_GRANTED = "ra.role_granted"
    RA_ROLE_REVOKED = "ra.role_revoked"
    RA_ROLE_SELECTED = "ra.role_selected"
    SERVICE_INITIALISED = "service.initialised"
    # key rotation (issue 20)
    KEY_MASTER_ROTATION_STARTED = "rotation.master_key_started"
    KEY_MASTER_ROTATED = "rotation.master_key_done"
    KEY_TRANSPORT_ADDED = "rotation.transport_key_added"
    KEY_TRANSPORT_RETIRED = "rotation.transport_key_retired"
    KEY_CA_ROTATED = "rotation.ca_rotated"
    KEY_AUDIT_ROTATED = "rotation.audit_key_rotated"
    KEY_CA_RETIRED = "rotation.ca_key_retired"
    # the audit trail itself
    AUDIT_RESTORE_ACKNOWLEDGED = "audit.restore_acknowledged"

    @property
    def namespace(self) -> str:
        """The part before the first dot: what the action is about (``card``, ``piv``, …)."""
        return self.value.partition(".")[0]

    @classmethod
    def of(cls, code: str) -> AuditAction | None:
        """The member for a stored code, or None for a code this version does not record."""
        try:
            return cls(code)
        except ValueError:
            return None
