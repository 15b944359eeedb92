"""The two holder switches on the RA settings page (issue 19): whether holders add phones and
keys themselves, and whether an invitation may end without a second factor. Changed by an
RA manager only, audited old -> new; on SQLite and PostgreSQL."""

from __future__ import annotations

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


def test_a_manager_switches_the_holder_settings_audited_old_and_new(
    rt: Runtime, operator: Actor
) -> None:
    a.open_org(rt, operator, "ORGA")
    c = w.client(rt)
    w.sign_in(c, w.ra_user(rt, operator, "ORGA"))
    page = c.get(URL).text
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
