"""The first step of both web sign-ins (``web.ui.first_step``): the vRA Manager's and the
portal's My card map a refused identifier, and the engine's refusal of the input, to the
same fields, with the same status."""

from __future__ import annotations

from html import unescape

import pytest
from tests.support import auth as a
from tests.support import factories as f
from tests.support import ra_web as w

from cardvault.services.system.runtime import Actor, Runtime

#: the two sign-in pages and where each goes after the right passcode
PAGES = {"/ra": "/ra/login/code", "/portal/card": "/portal/card/login/code"}


@pytest.fixture
def email(rt: Runtime, operator: Actor) -> str:
    a.open_org(rt, operator, "ORGA")
    return w.ra_user(rt, operator, "ORGA", forename="Rana", surname="Issuer").email


def _field_error(html: str, field: str, message: str) -> None:
    html = unescape(html)
    assert f'<li><a href="#f-{field}">{message}' in html  # the summary links the field
    assert f'id="f-{field}-error"' in html


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("rana", "Enter your email address, like name@example.org, or your Windows account"),
        ("rana@", "Enter an email address in the right format"),
        ("\\rana", "Enter the AD domain"),
        ("ORGA\\", "Enter the AD account name"),
        ("", "Enter your email address or Windows account."),
    ],
)
def test_a_refused_identifier_is_shown_next_to_the_identifier_field(
    rt: Runtime, email: str, page: str, typed: str, message: str
) -> None:
    r = w.post(w.client(rt), page, identifier=typed, passcode=f.STRONG_PASSCODE)
    assert r.status_code == 422
    _field_error(r.text, "identifier", message)
    assert f.STRONG_PASSCODE not in r.text


@pytest.mark.parametrize("page", PAGES)
def test_the_engines_refusal_of_the_input_is_a_precise_error_that_keeps_the_identifier(
    rt: Runtime, email: str, page: str
) -> None:
    too_long = "x" * 300
    r = w.post(w.client(rt), page, identifier=email, passcode=too_long)
    assert r.status_code == 422
    _field_error(r.text, "passcode", "Enter your passcode.")
    assert f'value="{email}"' in unescape(r.text)
    assert too_long not in r.text


@pytest.mark.parametrize("page", PAGES)
def test_a_missing_passcode_and_a_wrong_one(rt: Runtime, email: str, page: str) -> None:
    missing = w.post(w.client(rt), page, identifier=email, passcode="")
    assert missing.status_code == 422
    _field_error(missing.text, "passcode", "Enter your passcode.")
    wrong = w.post(w.client(rt), page, identifier=email, passcode="not the passcode")
    assert wrong.status_code == 401
    assert 'href="#f-passcode"' in wrong.text


@pytest.mark.parametrize("page", PAGES)
def test_the_right_passcode_leads_to_the_second_factor(rt: Runtime, email: str, page: str) -> None:
    r = w.post(w.client(rt), page, identifier=email, passcode=f.STRONG_PASSCODE)
    assert r.status_code == 303, r.text[:1000]
    assert r.headers["location"] == PAGES[page]
