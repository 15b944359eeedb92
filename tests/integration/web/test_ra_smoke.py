"""The vRA Manager end to end over HTTP (TestClient): sign-in, role, find, person page."""

from __future__ import annotations

from tests.support import auth as a
from tests.support import factories as f
from tests.support import ra_web as w

from cardvault.services.system.runtime import Actor, Runtime


def test_ra_signs_in_chooses_role_and_finds_a_person(rt: Runtime, operator: Actor) -> None:
    a.open_org(rt, operator, "ORGA")
    ra = w.ra_user(rt, operator, "ORGA")
    bob = f.issued_card(rt, operator, "ORGA", forename="Bob", surname="Builder")
    c = w.client(rt)
    w.sign_in(c, ra)
    r = c.get("/ra/persons", params={"q": "builder"})
    assert r.status_code == 200, r.text
    assert "Bob Builder" in r.text
    r = c.get(f"/ra/persons/{bob.user_id}")
    assert r.status_code == 200, r.text
    assert bob.serial in r.text


def test_the_demo_ra_from_init_can_sign_in(rt: Runtime, operator: Actor) -> None:
    import pyotp

    from cardvault.services.system import bootstrap

    demo = bootstrap.create_demo(rt, operator)
    ra = demo.ra_user
    c = w.client(rt)
    r = w.post(c, "/ra", identifier=ra.email, passcode=ra.passcode)
    assert r.status_code == 303, r.text
    r = w.post(c, "/ra/login/code", code=pyotp.TOTP(str(ra.totp_secret)).now())
    assert r.status_code == 303, r.text
    r = w.post(c, "/ra/role", role="DEMO:ra_manager")
    assert r.status_code == 303
    page = c.get("/ra/persons", params={"q": "bob"})
    assert "Bob Newcomer" in page.text
