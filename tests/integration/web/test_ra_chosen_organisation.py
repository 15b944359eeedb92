"""After choosing an organisation at sign-in, an RA acts there only (issue 19/21 review): the
role list shows that organisation's roles, another organisation's role is refused (page,
service and RA API), and its people are neither seen nor changed."""

from __future__ import annotations

from html import unescape

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.support import auth as a
from tests.support import factories as f
from tests.support import ra_web as w

from cardvault.errors import PermissionDenied
from cardvault.services.ra import actions as ra_actions
from cardvault.services.signin import sessions as card_sessions
from cardvault.services.signin.engine import Engine, LoginRequest
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import CardSession, Membership, Person


@pytest.fixture
def in_orgb(rt: Runtime, operator: Actor) -> tuple[TestClient, w.RaUser]:
    """The RA of ORGA and ORGB, signed in by email to ORGB (chosen)."""
    user, secret = w.ra_of_two(rt, operator)
    c = w.client(rt)
    r = w.post(c, "/ra", identifier=user.email, passcode=f.STRONG_PASSCODE)
    assert r.headers["location"] == "/ra/login/organisation"
    w.post(c, "/ra/login/organisation", organisation="ORGB")
    r = w.post(c, "/ra/login/code", code=pyotp.TOTP(secret).now())
    assert (r.status_code, r.headers["location"]) == (303, "/ra/role"), r.text[:1000]
    return c, user


def test_the_role_list_shows_only_the_chosen_organisation(
    rt: Runtime, in_orgb: tuple[TestClient, w.RaUser]
) -> None:
    c, _user = in_orgb
    page = unescape(c.get("/ra/role").text)
    assert 'value="ORGB:ra_agent"' in page
    assert "ORGA" not in page


def test_another_organisations_role_is_refused(
    rt: Runtime, in_orgb: tuple[TestClient, w.RaUser]
) -> None:
    c, _user = in_orgb
    r = w.post(c, "/ra/role", role="ORGA:ra_manager")
    assert r.status_code == 422
    assert "Choose one of your RA roles." in unescape(r.text)
    with rt.db() as s:
        session_id = s.scalars(select(CardSession.id)).one()
    with pytest.raises(PermissionDenied):
        card_sessions.select_role(
            rt, a.client(), None, org_code="ORGA", role="ra_manager", session_id=session_id
        )
    assert w.post(c, "/ra/role", role="ORGB:ra_agent").status_code == 303


def test_another_organisations_people_are_neither_seen_nor_changed(
    rt: Runtime, operator: Actor, in_orgb: tuple[TestClient, w.RaUser]
) -> None:
    c, _user = in_orgb
    only_a = f.active_card(rt, operator, "ORGA", forename="Alma", surname="Aonly")
    assert w.post(c, "/ra/role", role="ORGB:ra_agent").status_code == 303
    found = c.get("/ra/persons?q=Aonly").text
    assert only_a.user_id not in found
    assert "Alma Aonly" not in found
    assert c.get(f"/ra/persons/{only_a.user_id}").status_code == 404
    r = w.post(c, f"/ra/persons/{only_a.user_id}/leave", page="/ra/persons",
               reason="moved", confirm="yes")  # fmt: skip
    assert r.status_code == 404
    r = w.post(c, f"/ra/persons/{only_a.user_id}/card/lock", page="/ra/persons", reason="x")
    assert r.status_code == 404
    with rt.db() as s:
        person = s.scalar(select(Person).where(Person.user_id == only_a.user_id))
        assert person is not None
        assert s.scalar(select(Membership.id).where(Membership.person_id == person.id))


def test_the_ra_session_lists_only_the_organisation_signed_in_to(
    rt: Runtime, operator: Actor
) -> None:
    """What the RA API's role list and role choice answer from, with the agent's
    ``--organisation``."""
    user, secret = w.ra_of_two(rt, operator)
    engine = Engine(rt)
    started = engine.login(
        a.client(),
        LoginRequest(identifier_kind="email", identifier=user.email, passcode=f.STRONG_PASSCODE,
                     purpose="ra", organisation="ORGB"),
    )  # fmt: skip
    done = engine.complete_code(a.client(), started.transaction_id, pyotp.TOTP(secret).now())
    roles = ra_actions.roles(rt, None, a.LOCAL, session_id=done.session_id)
    assert [(r["organisation"], r["role"]) for r in roles] == [("ORGB", "ra_agent")]
