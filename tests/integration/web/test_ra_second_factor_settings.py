"""The settings page and the RA API edit ``second_factors`` (issue 19 review): which second
factors the organisation allows for sign-in and for a passcode reset. At least one must
remain (a precise error, nothing saved); each change is audited with its old and new list,
and a sign-in then offers only what is allowed. On SQLite and PostgreSQL."""

from __future__ import annotations

from html import unescape
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.support import auth as a
from tests.support import factories as f
from tests.support import ra_web as w

from cardvault.domain.audit_actions import AuditAction
from cardvault.services.signin.engine import Engine, LoginRequest
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import AuditEvent, Organisation

PAGE = "/ra/organisation/settings"
ALL = ["authenticator", "totp", "fido2", "hr_card"]
FIELDS = {"session_absolute_minutes": "720", "session_idle_minutes": "60",
          "reset_link_minutes": "30", "card_pin_min_length": "6", "certificate_days": "1095",
          "renew_days": "30", "leaver_retention_days": "365", "route_email": "yes",
          "recovery_requires_second_factor": "yes"}  # fmt: skip


@pytest.fixture
def manager(rt: Runtime, operator: Actor) -> tuple[TestClient, w.RaUser]:
    return w.signed_in_ra(rt, operator, forename="Mandy")


def _policy(rt: Runtime) -> dict[str, Any]:
    with rt.db() as s:
        org = s.scalar(select(Organisation).where(Organisation.code == "ORGA"))
        assert org is not None
        return dict(org.policy)


def _changes(rt: Runtime) -> list[dict[str, Any]]:
    with rt.db() as s:
        return [
            e.details["changes"]
            for e in s.scalars(
                select(AuditEvent)
                .where(AuditEvent.action == AuditAction.ORGANISATION_POLICY_CHANGED)
                .order_by(AuditEvent.seq)
            )
        ]


def test_the_page_shows_every_factor_allowed_by_default(
    rt: Runtime, manager: tuple[TestClient, w.RaUser]
) -> None:
    c, _user = manager
    html = c.get(PAGE).text
    assert "Second factors allowed" in html
    for factor in ALL:
        assert (
            f'id="f-factor_{factor}" name="factor_{factor}" type="checkbox" value="yes" checked'
            in html
        )


def test_none_left_is_refused_next_to_the_field_and_nothing_is_saved(
    rt: Runtime, manager: tuple[TestClient, w.RaUser]
) -> None:
    c, _user = manager
    before = _policy(rt)
    r = w.post(c, PAGE, **FIELDS)  # every factor box unticked
    assert r.status_code == 422
    html = unescape(r.text)
    assert '<li><a href="#f-second_factors">Allow at least one second factor' in html
    assert 'id="f-second_factors-error"' in html
    assert _policy(rt) == before
    assert _changes(rt) == []


def test_a_change_is_audited_and_the_sign_in_follows_it(
    rt: Runtime, operator: Actor, manager: tuple[TestClient, w.RaUser]
) -> None:
    c, _user = manager
    r = w.post(c, PAGE, **FIELDS, factor_totp="yes")
    assert r.status_code == 303, r.text[:800]
    assert _policy(rt)["second_factors"] == ["totp"]
    assert _changes(rt)[-1]["second_factors"] == {"old": ALL, "new": ["totp"]}
    assert 'name="factor_authenticator" type="checkbox" value="yes">' in c.get(PAGE).text
    # the same form again changes nothing
    assert w.post(c, PAGE, **FIELDS, factor_totp="yes").status_code == 303
    assert len(_changes(rt)) == 1

    holder = a.holder(rt, operator, "ORGA", forename="Hal")
    started = Engine(rt).login(
        a.client(),
        LoginRequest(identifier_kind="email", identifier=holder.email,
                     passcode=f.STRONG_PASSCODE),
    )  # fmt: skip
    assert [o.method for o in started.second_factors] == ["totp"]


def test_the_ra_api_edits_them_and_leaving_them_out_changes_nothing(
    rt: Runtime, manager: tuple[TestClient, w.RaUser]
) -> None:
    _c, user = manager
    c = w.client(rt)
    auth = {"Authorization": f"Bearer {w.api_token(rt, user)}"}
    numbers = {k: int(v) for k, v in FIELDS.items() if v.isdigit()}
    body: dict[str, Any] = {"allowed_methods": ["email"], "numbers": numbers, "switches": {}}
    assert c.get("/api/v1/ra/settings", headers=auth).json()["second_factors"] == ALL
    r = c.put("/api/v1/ra/settings", headers=auth, json={**body, "second_factors": []})
    assert r.status_code == 422
    assert "Allow at least one second factor" in r.text
    r = c.put(
        "/api/v1/ra/settings", headers=auth, json={**body, "second_factors": ["fido2", "totp"]}
    )
    assert r.status_code == 200, r.text
    assert r.json()["changed"]["second_factors"] == {"old": ALL, "new": ["totp", "fido2"]}
    r = c.put("/api/v1/ra/settings", headers=auth, json=body)
    assert r.status_code == 200
    assert "second_factors" not in r.json()["changed"]
    assert _policy(rt)["second_factors"] == ["totp", "fido2"]
