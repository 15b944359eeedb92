"""Which audit events the metrics count, and how (pure: no database, no server)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from cardvault.domain.audit_actions import AuditAction
from cardvault.services.system.metrics import Metrics, _from_audit


def _counted(action: AuditAction, outcome: str, **details: object) -> dict[str, float]:
    m = Metrics()
    record = _from_audit(action, outcome, details)
    if record is not None:
        record(m)
    text = m.exposition().decode()
    return {
        f"{s.name}{sorted(s.labels.items())}": s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.endswith("_total") and s.value
    }


def test_a_session_opened_is_one_successful_sign_in_by_its_route() -> None:
    assert _counted(AuditAction.SESSION_OPENED, "success", method="ad_account+push") == {
        "cardvault_signins_total[('outcome', 'success'), ('route', 'ad_account')]": 1.0
    }


def test_a_step_that_passed_counts_nothing_a_refused_step_counts_by_step() -> None:
    assert _counted(AuditAction.AUTH_PASSCODE, "success", method="email") == {}
    assert _counted(AuditAction.AUTH_PASSCODE, "failure", method="email") == {
        "cardvault_signins_total[('outcome', 'passcode_refused'), ('route', 'email')]": 1.0
    }
    assert _counted(AuditAction.SECURITY_KEY_SIGN_IN, "failure") == {
        "cardvault_signins_total[('outcome', 'security_key_refused'), ('route', 'fido2')]": 1.0
    }


def test_signatures_push_answers_and_failed_notifications() -> None:
    assert _counted(AuditAction.CARD_SIGNED, "success", key="content-commitment") == {
        "cardvault_signatures_total[('key', 'content-commitment'), ('outcome', 'success')]": 1.0
    }
    assert _counted(AuditAction.CARD_SIGNED, "failure", slot="9c") == {
        "cardvault_signatures_total[('key', 'piv-9c'), ('outcome', 'failure')]": 1.0
    }
    assert _counted(AuditAction.PUSH_ANSWERED, "failure") == {
        "cardvault_push_answers_total[('outcome', 'failure')]": 1.0
    }
    assert _counted(AuditAction.NOTIFICATION_FAILED, "failure", channel="sms") == {
        "cardvault_notifications_failed_total[('channel', 'sms')]": 1.0
    }


def test_other_events_are_not_counted() -> None:
    assert _from_audit(AuditAction.AUTH_MIA, "success", {}) is None
