"""The session's time limits over HTTP (WCAG 2.2.1; web/ui/timeout.py): what the pages say,
what the status endpoint reads without restarting a timer, and what "Stay signed in" moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from tests.support import auth as a
from tests.support import ra_web as w
from tests.support.portal import Clock

from cardvault.services.directory import registry as directory
from cardvault.services.signin import web_sessions
from cardvault.services.signin.engine import Engine
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import CardSession, WebSession


def _rows(rt: Runtime) -> tuple[WebSession, CardSession]:
    with rt.db() as s:
        web = s.scalar(select(WebSession).where(WebSession.card_session_id.is_not(None)))
        assert web is not None
        card = s.get(CardSession, web.card_session_id)
        assert card is not None
        return web, card


def _signed_in(rt: Runtime, operator: Actor):  # type: ignore[no-untyped-def]
    a.open_org(rt, operator, "ORGA")
    ra = w.ra_user(rt, operator, "ORGA")
    clock = Clock(datetime.now(UTC))
    rt.clock = clock
    c = w.client(rt)
    w.sign_in(c, ra)
    return c, clock


def test_the_status_restarts_no_timer_and_stay_signed_in_restarts_both(
    rt: Runtime, operator: Actor
) -> None:
    c, clock = _signed_in(rt, operator)
    token = w.csrf(c.get("/ra/persons").text)
    web, card = _rows(rt)
    clock.advance(minutes=5)

    status = c.get("/ra/api/session")
    assert status.status_code == 200
    assert status.headers["cache-control"] == "no-store"
    assert status.json() == {
        "active": True,
        "signed_in": True,
        "idle_seconds": 10 * 60,
        "end_seconds": 12 * 60 * 60 - 5 * 60,
    }
    assert _rows(rt)[0].idle_expires_at == web.idle_expires_at  # nothing moved
    assert _rows(rt)[1].idle_expires_at == card.idle_expires_at

    assert c.post("/ra/api/session/extend").status_code == 403  # no CSRF token: refused
    # (any request of the browser restarts its web session's timer; the card session's is
    # restarted only by pages and a "Stay signed in" that passed the CSRF check)
    assert _rows(rt)[1].idle_expires_at == card.idle_expires_at
    extended = c.post("/ra/api/session/extend", headers={"x-csrf-token": token})
    assert extended.status_code == 200
    assert extended.json()["idle_seconds"] == 15 * 60
    web2, card2 = _rows(rt)
    assert web2.idle_expires_at == clock.now + timedelta(minutes=15)
    assert card2.idle_expires_at == clock.now + timedelta(minutes=60)
    assert web2.expires_at == web.expires_at  # the absolute end does not move

    clock.advance(minutes=16)
    assert c.get("/ra/api/session").json() == {"active": False}
    page = c.get("/ra/signed-out?why=idle")
    assert page.status_code == 200
    assert "nothing happened on the page for 15 minutes" in page.text


def test_a_shorter_organisation_policy_is_the_limit_the_pages_say(
    rt: Runtime, operator: Actor
) -> None:
    c, _clock = _signed_in(rt, operator)
    directory.update_policy(
        rt, operator, "ORGA", {"session_idle_minutes": 5, "session_absolute_minutes": 60}
    )
    c.post("/ra/api/session/extend", headers={"x-csrf-token": w.csrf(c.get("/ra/persons").text)})
    page = c.get("/ra/persons")
    assert "you are signed out after 5 minutes without activity, and 1 hour after" in page.text
    assert 'data-idle-seconds="300"' in page.text
    assert c.get("/ra/api/session").json()["idle_seconds"] == 5 * 60


def test_an_anonymous_page_says_its_form_times_out(rt: Runtime, operator: Actor) -> None:
    a.open_org(rt, operator, "ORGA")
    c = w.client(rt)
    page = c.get("/ra")
    assert "a form on this site stops working after 15 minutes without activity" in page.text
    assert 'data-signed-in="false"' in page.text
    assert "<noscript>" in page.text
    assert c.get("/ra/api/session").json()["signed_in"] is False
    statement = c.get("/ra/accessibility")
    assert statement.status_code == 200
    assert "fully meet the Web Content Accessibility Guidelines version 2.2, level AA" in (
        statement.text
    )
    assert "IT service desk" in statement.text  # no contact configured


def test_the_statement_names_the_operators_contact(rt: Runtime, operator: Actor) -> None:
    a.open_org(rt, operator, "ORGA")
    rt.settings.accessibility_contact = "accessibility@example.org"
    text = w.client(rt).get("/portal/accessibility").text
    assert 'href="mailto:accessibility@example.org"' in text


def test_a_signed_in_portal_page_warns_and_offers_to_stay_signed_in(
    rt: Runtime, operator: Actor
) -> None:
    """The portal's signed-in pages (a holder's session bound to a card session) get the same
    footer and warning as the vRA Manager's: it is all in the shared layout."""
    a.open_org(rt, operator)
    h = a.holder(rt, operator)
    grant = a.login(Engine(rt), h, code=h.code())
    assert grant.session is not None
    c = w.client(rt)
    c.get("/portal")
    view = web_sessions.load(rt, "portal", c.cookies.get("__Host-cardvault-portal"))
    assert view is not None
    signed = web_sessions.sign_in(rt, view, card_session_id=grant.transaction_id)
    c.cookies.clear()  # the rotated token replaces the anonymous one
    c.cookies.set("__Host-cardvault-portal", signed.token)
    page = c.get("/portal")
    assert "you are signed out after 15 minutes without activity" in page.text
    assert 'data-signed-in="true"' in page.text
    assert "Stay signed in" in page.text
    assert c.get("/portal/api/session").json()["signed_in"] is True
