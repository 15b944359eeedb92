"""The holder switches on the RA settings page (issue 19): whether holders add phones and
keys themselves, and whether an invitation may end without a second factor; and whether cards
get an encryption key (issue 18). Changed by an
RA manager only, audited old -> new; on SQLite and PostgreSQL."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.support import auth as a
from tests.support import ra_web as w

from cardvault.domain.audit_actions import AuditAction
from cardvault.services.directory import registry as directory
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import AuditEvent, Organisation

URL = "/ra/organisation/settings"
FIELDS = {
    "session_absolute_minutes": "720", "session_idle_minutes": "60",
    "reset_link_minutes": "30", "card_pin_min_length": "6", "certificate_days": "1095",
    "renew_days": "30", "leaver_retention_days": "365", "route_email": "yes",
    "route_totp": "yes", "recovery_requires_second_factor": "yes",
    "factor_authenticator": "yes", "factor_totp": "yes", "factor_fido2": "yes",
    "factor_hr_card": "yes",
}  # fmt: skip


def _policy(rt: Runtime) -> dict[str, object]:
    with rt.db() as s:
        org = s.scalar(select(Organisation).where(Organisation.code == "ORGA"))
        assert org is not None
        return dict(org.policy)


def _manager_on_the_page(rt: Runtime, operator: Actor) -> tuple[TestClient, str]:
    """An RA manager of ORGA signed in, and the settings page they see."""
    a.open_org(rt, operator, "ORGA")
    c = w.client(rt)
    w.sign_in(c, w.ra_user(rt, operator, "ORGA"))
    return c, c.get(URL).text


def test_a_manager_switches_the_holder_settings_audited_old_and_new(
    rt: Runtime, operator: Actor
) -> None:
    c, page = _manager_on_the_page(rt, operator)
    assert 'name="holders_add_methods"' in page
    assert 'name="in_person_methods"' in page
    r = w.post(c, URL, **FIELDS, holders_add_methods="yes", in_person_methods="yes")
    assert r.status_code == 303, r.text[:800]
    policy = _policy(rt)
    assert (policy["holders_add_methods"], policy["in_person_methods"]) == (True, True)
    with rt.db() as s:
        event = s.scalar(
            select(AuditEvent)
            .where(AuditEvent.action == AuditAction.ORGANISATION_POLICY_CHANGED)
            .order_by(AuditEvent.seq.desc())
        )
        assert event is not None
        assert event.details["changes"]["in_person_methods"] == {"old": False, "new": True}
        assert "holders_add_methods" not in event.details["changes"]
    r = w.post(c, URL, **FIELDS)  # both boxes left empty: both off
    assert r.status_code == 303
    policy = _policy(rt)
    assert (policy["holders_add_methods"], policy["in_person_methods"]) == (False, False)
    with rt.db() as s:
        event = s.scalar(
            select(AuditEvent)
            .where(AuditEvent.action == AuditAction.ORGANISATION_POLICY_CHANGED)
            .order_by(AuditEvent.seq.desc())
        )
        assert event is not None
        assert event.details["changes"]["holders_add_methods"] == {"old": True, "new": False}
        assert event.details["changes"]["in_person_methods"] == {"old": True, "new": False}


def test_an_ra_agent_may_not_change_them(rt: Runtime, operator: Actor) -> None:
    a.open_org(rt, operator, "ORGA")
    c = w.client(rt)
    w.sign_in(c, w.ra_user(rt, operator, "ORGA", role="ra_agent"))
    directory.update_policy(rt, operator, "ORGA", {"holders_add_methods": True})
    token = w.csrf(c.get("/ra/persons").text)
    r = c.post(URL, data={"csrf_token": token, **FIELDS})
    assert r.status_code in (403, 404)
    assert _policy(rt)["holders_add_methods"] is True


def test_a_manager_gives_the_cards_an_encryption_key(rt: Runtime, operator: Actor) -> None:
    """Issue 18: the key-management key (9D) is one more switch, off by default."""
    c, page = _manager_on_the_page(rt, operator)
    assert 'name="key_management"' in page
    assert "encryption key" in page
    assert _policy(rt).get("key_management", False) is False
    r = w.post(c, URL, **FIELDS, key_management="yes")
    assert r.status_code == 303, r.text[:800]
    assert _policy(rt)["key_management"] is True
