"""A yes/no setting not sent (issue 19 review): the RA API's ``PUT /api/v1/ra/settings``
leaves it as it is, while the settings page keeps its checkbox meaning (an unticked box is
"no"). An unknown switch is a precise error and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.support import auth as a
from tests.support import ra_web as w

from cardvault.services.directory import registry as directory
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import Organisation

NUMBERS = {"session_absolute_minutes": 720, "session_idle_minutes": 60, "reset_link_minutes": 30,
           "card_pin_min_length": 6, "certificate_days": 1095, "renew_days": 30,
           "leaver_retention_days": 365}  # fmt: skip


@pytest.fixture
def manager(rt: Runtime, operator: Actor) -> w.RaUser:
    a.open_org(rt, operator, "ORGA")
    directory.update_policy(rt, operator, "ORGA", {"role_grants_need_approval": True,
                                                    "holders_add_methods": True})  # fmt: skip
    return w.ra_user(rt, operator, "ORGA", forename="Mandy")


def _policy(rt: Runtime) -> dict[str, Any]:
    with rt.db() as s:
        org = s.query(Organisation).filter_by(code="ORGA").one()
        return dict(org.policy)


def _put(rt: Runtime, user: w.RaUser, **body: Any) -> Any:
    c = w.client(rt)
    token = w.api_token(rt, user)
    sent = {"allowed_methods": ["email"], "numbers": NUMBERS, "switches": {}, **body}
    return c.put("/api/v1/ra/settings", json=sent, headers={"Authorization": f"Bearer {token}"})


def test_a_switch_the_api_does_not_send_is_unchanged(rt: Runtime, manager: w.RaUser) -> None:
    r = _put(rt, manager, switches={"cards_need_sponsor_approval": True})
    assert r.status_code == 200, r.text
    assert "role_grants_need_approval" not in r.json()["changed"]
    policy = _policy(rt)
    assert policy["role_grants_need_approval"] is True
    assert policy["holders_add_methods"] is True
    assert policy["cards_need_sponsor_approval"] is True
    r = _put(rt, manager, switches={"holders_add_methods": False})
    assert r.json()["changed"]["holders_add_methods"] == {"old": True, "new": False}
    assert _policy(rt)["role_grants_need_approval"] is True


def test_an_unknown_switch_is_refused_and_nothing_changes(rt: Runtime, manager: w.RaUser) -> None:
    before = _policy(rt)
    r = _put(rt, manager, switches={"holders_add_method": False})
    assert r.status_code == 422
    assert "Unknown yes/no setting 'holders_add_method'" in r.text
    assert _policy(rt) == before


def test_an_unticked_box_on_the_page_still_means_no(rt: Runtime, manager: w.RaUser) -> None:
    c: TestClient = w.client(rt)
    w.sign_in(c, manager)
    fields = {k: str(v) for k, v in NUMBERS.items()}
    r = w.post(c, "/ra/organisation/settings", route_email="yes", factor_totp="yes",
               role_grants_need_approval="yes", **fields)  # fmt: skip
    assert r.status_code == 303, r.text[:800]
    policy = _policy(rt)
    assert policy["role_grants_need_approval"] is True
    assert policy["holders_add_methods"] is False  # its box was not ticked
