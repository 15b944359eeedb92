"""The vRA Manager for an RA of several organisations, and for one who signs in with a
security key alone (issue 21), on SQLite and PostgreSQL: it asks which organisation when an
email address admits several, and offers the key again for re-authentication."""

from __future__ import annotations

from html import unescape

import pyotp
import pytest
from sqlalchemy import select
from tests.support import factories as f
from tests.support import keys as k
from tests.support import ra_web as w
from tests.support.soft_ctap2 import SoftCtap2Device

from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import AuditEvent, CardSession, Organisation

REAUTH = "/ra/reauth?next=/ra/persons"


@pytest.fixture
def ra_of_two(rt: Runtime, operator: Actor) -> tuple[w.RaUser, str]:
    return w.ra_of_two(rt, operator)


def _session_org(rt: Runtime) -> str:
    with rt.db() as s:
        row = s.scalars(select(CardSession).order_by(CardSession.created_at.desc())).first()
        assert row is not None
        org = s.get(Organisation, row.organisation_id)
        assert org is not None
        return org.code


def test_the_ra_chooses_the_organisation_and_its_second_factor_follows(
    rt: Runtime, ra_of_two: tuple[w.RaUser, str]
) -> None:
    user, secret = ra_of_two
    c = w.client(rt)
    r = w.post(c, "/ra", identifier=user.email, passcode=f.STRONG_PASSCODE)
    assert (r.status_code, r.headers["location"]) == (303, "/ra/login/organisation")
    page = unescape(c.get("/ra/login/organisation").text)
    assert "Which organisation are you signing in to?" in page
    assert "Organisation ORGA (ORGA)" in page
    assert "Organisation ORGB (ORGB)" in page

    r = w.post(c, "/ra/login/organisation", organisation="ORGC")
    assert r.status_code == 422
    r = w.post(c, "/ra/login/organisation", organisation="ORGB")
    assert (r.status_code, r.headers["location"]) == (303, "/ra/login/code")
    r = w.post(c, "/ra/login/code", code=pyotp.TOTP(secret).now())

    assert r.status_code == 303, r.text[:2000]
    assert _session_org(rt) == "ORGB"
    with rt.db() as s:
        chosen = s.scalar(select(AuditEvent).where(AuditEvent.action == "auth.organisation_chosen"))
        assert chosen is not None
        assert chosen.details["organisation"] == "ORGB"


def test_the_first_organisations_code_does_not_open_the_second(
    rt: Runtime, ra_of_two: tuple[w.RaUser, str]
) -> None:
    user, _secret = ra_of_two
    c = w.client(rt)
    w.post(c, "/ra", identifier=user.email, passcode=f.STRONG_PASSCODE)
    w.post(c, "/ra/login/organisation", organisation="ORGB")
    r = w.post(c, "/ra/login/code", code=w.fresh_code(user))  # ORGA's app
    assert r.status_code != 303


# --- an RA who signed in with a security key alone -----------------------------------------


@pytest.fixture
def key_ra(rt: Runtime, operator: Actor) -> tuple[w.RaUser, SoftCtap2Device]:
    return w.key_ra(rt, operator, "ORGA")


def test_reauthentication_offers_the_key_again_not_an_identifier(
    rt: Runtime, key_ra: tuple[w.RaUser, SoftCtap2Device]
) -> None:
    user, device = key_ra
    c = w.client(rt)
    w.key_sign_in(rt, c, device, user)

    page = c.get("/ra/reauth?next=/ra/persons").text
    assert 'id="key-form"' in page
    assert 'action="/ra/reauth/key"' in page
    assert 'name="passcode"' not in page  # the passcode comes after the key

    assert w.key_reauth(rt, c, device, "/ra/persons") == "/ra/persons"
    assert c.get("/ra/persons").status_code == 200


def test_another_persons_key_does_not_confirm(
    rt: Runtime, operator: Actor, key_ra: tuple[w.RaUser, SoftCtap2Device]
) -> None:
    user, device = key_ra
    other = w.ra_user(rt, operator, "ORGA", forename="Otto", surname="Other")
    their_key = SoftCtap2Device(pin=k.PIN)
    k.register(rt, operator, other.holder.card, their_key, org_code="ORGA", resident=True)
    c = w.client(rt)
    w.key_sign_in(rt, c, device, user)

    proof = k.key_first(rt, their_key).proof
    w.post(c, "/ra/reauth/key", page=REAUTH, proof=proof, next="/ra/persons")
    r = w.post(c, "/ra/reauth/key/passcode", page="/ra/reauth/key", passcode=f.STRONG_PASSCODE)

    assert r.headers["location"].startswith("/ra/reauth?next=")
    with rt.db() as s:  # their new session was closed at once
        assert (
            s.scalar(select(CardSession).where(CardSession.card_id != user.holder.card.card_id))
            is None
        )
