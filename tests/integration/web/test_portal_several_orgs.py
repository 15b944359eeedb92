"""My card for a holder of two organisations (issue 21), on SQLite and PostgreSQL: an email
address names no organisation, so after the passcode the page asks which one, and the second
step and the card session are that organisation's."""

from __future__ import annotations

from html import unescape

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.support import auth as a
from tests.support import factories as f
from tests.support import ra_web as w

from cardvault.services.cards import methods
from cardvault.services.directory import registry as directory
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import AuditEvent, CardSession, Organisation

HOME = "/portal/card"
CHOOSE = "/portal/card/login/organisation"


@pytest.fixture
def holder_of_two(rt: Runtime, operator: Actor) -> tuple[a.HolderFixture, str]:
    """A holder with an authenticator app in ORG1 and another in ORGB (which allows apps only)."""
    a.open_org(rt, operator)
    f.org(rt, operator, "ORGB", networks=a.LOOPBACK, policy={"second_factors": ["totp"]})
    h = a.holder(rt, operator, forename="Orla", surname="Twice")
    directory.add_membership(rt, operator, h.card.user_id, "ORGB")
    app = methods.add_totp(rt, operator, serial=h.card.serial, org_code="ORGB")
    return h, app.secret


def _passcode(c: TestClient, h: a.HolderFixture) -> str:
    r = w.post(c, HOME, identifier=h.email, passcode=f.STRONG_PASSCODE)
    assert r.status_code == 303, r.text[:500]
    return str(r.headers["location"])


def _session_org(rt: Runtime) -> str:
    with rt.db() as s:
        row = s.scalars(select(CardSession).order_by(CardSession.created_at.desc())).first()
        assert row is not None
        org = s.get(Organisation, row.organisation_id)
        assert org is not None
        return org.code


def test_the_holder_chooses_the_organisation_and_signs_in_there(
    rt: Runtime, holder_of_two: tuple[a.HolderFixture, str]
) -> None:
    h, secret = holder_of_two
    c = w.client(rt)
    assert _passcode(c, h) == CHOOSE
    page = unescape(c.get(CHOOSE).text)
    assert "Which organisation are you signing in to?" in page
    assert "(ORG1)" in page
    assert "(ORGB)" in page

    assert w.post(c, CHOOSE, organisation="ORGC").status_code == 422
    r = w.post(c, CHOOSE, organisation="ORGB")
    assert (r.status_code, r.headers["location"]) == (303, f"{HOME}/login/code")
    r = w.post(c, f"{HOME}/login/code", code=pyotp.TOTP(secret).now())

    assert (r.status_code, r.headers["location"]) == (303, HOME)
    assert _session_org(rt) == "ORGB"
    assert h.card.serial in c.get(HOME).text
    with rt.db() as s:
        chosen = s.scalar(select(AuditEvent).where(AuditEvent.action == "auth.organisation_chosen"))
        assert chosen is not None
        assert chosen.details["organisation"] == "ORGB"


def test_the_other_organisations_code_does_not_sign_in(
    rt: Runtime, holder_of_two: tuple[a.HolderFixture, str]
) -> None:
    h, _secret = holder_of_two
    c = w.client(rt)
    assert _passcode(c, h) == CHOOSE
    w.post(c, CHOOSE, organisation="ORGB")
    r = w.post(c, f"{HOME}/login/code", code=h.code())  # ORG1's app
    assert r.status_code != 303
    with rt.db() as s:
        assert s.scalar(select(CardSession)) is None


def test_the_code_page_waits_for_the_choice(
    rt: Runtime, holder_of_two: tuple[a.HolderFixture, str]
) -> None:
    h, _secret = holder_of_two
    c = w.client(rt)
    assert _passcode(c, h) == CHOOSE
    r = w.post(c, f"{HOME}/login/code", page=CHOOSE, code=h.code())
    assert r.status_code == 303
    assert r.headers["location"] == HOME
    with rt.db() as s:
        assert s.scalar(select(CardSession)) is None
