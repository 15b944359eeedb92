"""The vRA Manager's sign-in page over HTTP: one field for an email address or a Windows
account, told apart by its form, with a precise error when it is neither."""

from __future__ import annotations

from html import unescape

import pytest
from tests.support import auth as a
from tests.support import factories as f
from tests.support import ra_web as w

from cardvault.services.cards import methods
from cardvault.services.system.runtime import Actor, Runtime


@pytest.fixture
def ra(rt: Runtime, operator: Actor) -> w.RaUser:
    a.open_org(rt, operator, "ORGA")
    user = w.ra_user(rt, operator, "ORGA", forename="Rana", surname="Issuer")
    methods.add_ad_account(
        rt, operator, serial=user.holder.card.serial, org_code="ORGA", account="ORGA\\rana"
    )
    return user


def test_the_page_has_one_identifier_field_and_still_offers_the_security_key(
    rt: Runtime, ra: w.RaUser
) -> None:
    html = w.client(rt).get("/ra").text
    assert 'type="radio"' not in html
    assert html.count('name="identifier"') == 1
    label = "Email address or Windows account (DOMAIN\\name)"
    assert f'<label class="label" for="f-identifier">{label}</label>' in html
    assert 'autocomplete="username"' in html
    assert 'id="key-form"' in html  # sign-in with a security key, unchanged


@pytest.mark.parametrize("identifier", ["email", "ORGA\\rana", "orga\\RANA"])
def test_an_email_address_or_a_windows_account_signs_in(
    rt: Runtime, ra: w.RaUser, identifier: str
) -> None:
    c = w.client(rt)
    typed = ra.email if identifier == "email" else identifier
    r = w.post(c, "/ra", identifier=typed, passcode=f.STRONG_PASSCODE)
    assert r.status_code == 303, r.text[:2000]
    assert r.headers["location"] == "/ra/login/code"
    r = w.post(c, "/ra/login/code", code=w.fresh_code(ra))
    assert r.status_code == 303, r.text[:2000]
    assert r.headers["location"] in ("/ra/role", "/ra/persons")


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("rana", "Enter your email address, like name@example.org, or your Windows account"),
        ("rana@", "Enter an email address in the right format"),
        ("\\rana", "Enter the AD domain"),
        ("", "Enter your email address or Windows account."),
    ],
)
def test_neither_is_refused_next_to_the_field(
    rt: Runtime, ra: w.RaUser, typed: str, message: str
) -> None:
    r = w.post(w.client(rt), "/ra", identifier=typed, passcode=f.STRONG_PASSCODE)
    assert r.status_code == 422
    html = unescape(r.text)
    assert f'<li><a href="#f-identifier">{message}' in html  # the error summary links the field
    assert 'id="f-identifier-error"' in html
    assert f.STRONG_PASSCODE not in html
    if typed:
        assert f'value="{typed}"' in html  # what was typed is kept


def test_a_wrong_passcode_reads_the_same_for_either_kind(rt: Runtime, ra: w.RaUser) -> None:
    answers = [
        w.post(w.client(rt), "/ra", identifier=who, passcode="not the passcode")
        for who in (ra.email, "ORGA\\rana", "nobody@example.org", "ORGA\\nobody")
    ]
    assert {r.status_code for r in answers} == {401}
    assert len({r.text.split('name="csrf_token"')[0] for r in answers}) == 1
