"""The self-service portal over HTTP: every step, its errors, CSRF, headers, the dev outbox."""

from __future__ import annotations

import logging
import re
import time
from datetime import datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.support import auth as a
from tests.support import factories as f
from tests.support import portal as p
from tests.support import ra_web

from cardvault.domain.vocabulary import AppletOrigin
from cardvault.notify.outbox import FileOutbox, MemoryOutbox
from cardvault.notify.templates import format_when
from cardvault.services.directory import registry as directory
from cardvault.services.notifications.dispatcher import Dispatcher, Senders
from cardvault.services.ra import cards as ra_cards
from cardvault.services.ra.actions import RaContext
from cardvault.services.recovery import links
from cardvault.services.signin.engine import Engine
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import Card, Link, PivCard
from cardvault.web.portal.steps import STEP_COOKIE, RedactLinkTokens

NEW = "violet tractor umbrella 1987"


def _post(c: TestClient, url: str, page_url: str | None = None, **fields: str) -> httpx.Response:
    page = c.get(page_url or url)
    assert page.status_code == 200, page.text[:400]
    return c.post(url, data={"csrf_token": ra_web.csrf(page.text), **fields})


def _locked(rt: Runtime, operator: Actor) -> tuple[a.HolderFixture, str]:
    a.open_org(rt, operator)
    h = a.holder(rt, operator, forename="Ann")
    p.lock(Engine(rt), h)
    box = MemoryOutbox()
    p.memory_dispatcher(rt, box).drain()
    return h, p.token_in(box.emails[-1].text)


def _status(rt: Runtime, card_id: str) -> str:
    with rt.db() as s:
        card = s.get(Card, card_id)
        assert card is not None
        return card.status


def test_reset_through_the_pages(rt: Runtime, operator: Actor) -> None:
    h, token = _locked(rt, operator)
    c = ra_web.client(rt)
    page = c.get(f"/portal/reset/{token}")
    assert page.status_code == 200
    assert "Hello Ann" in page.text
    assert all(q in page.text for q in f.QUESTIONS)
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    url = f"/portal/reset/{token}"
    wrong = _post(c, url, answer1="Felix", answer2="Paris", answer3="")
    assert wrong.status_code == 401
    assert "There is a problem" in wrong.text
    assert "Felix" not in wrong.text
    assert "Paris" not in wrong.text
    step = _post(c, url, answer1=f.ANSWERS[0], answer3=f.ANSWERS[2])
    assert step.status_code == 303
    assert step.headers["location"] == f"{url}/factor"
    cookie = step.headers["set-cookie"]
    assert STEP_COOKIE in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    step = _post(c, f"{url}/factor", method="totp", code=h.code())
    assert step.headers["location"] == f"{url}/passcode"
    weak = _post(c, f"{url}/passcode", passcode="password1", confirm="password1")
    assert weak.status_code == 422
    assert "too common" in weak.text
    assert "password1" not in weak.text
    assert _status(rt, h.card.card_id) == "locked"
    done = _post(c, f"{url}/passcode", passcode=NEW, confirm=NEW)
    assert done.headers["location"] == "/portal/reset-done"
    assert f"{STEP_COOKIE}=" in done.headers["set-cookie"]
    assert _status(rt, h.card.card_id) == "active"
    assert a.login(Engine(rt), h, passcode=NEW, code=h.code(time.time() + 30)).session
    again = c.get(url)
    assert again.status_code == 404
    assert "already been used" in again.text
    assert "Forgotten your passcode" in again.text  # what to do next


def test_steps_need_this_browsers_cookie_and_a_csrf_token(rt: Runtime, operator: Actor) -> None:
    h, token = _locked(rt, operator)
    url = f"/portal/reset/{token}"
    c = ra_web.client(rt)
    c.get(url)
    refused = c.post(url, data={"answer1": f.ANSWERS[0], "answer2": f.ANSWERS[1]})
    assert refused.status_code == 403
    other = ra_web.client(rt)
    lost = _post(other, f"{url}/factor", page_url=url, method="totp", code=h.code())
    assert "timed out or was started in another window" in lost.text
    assert _status(rt, h.card.card_id) == "locked"


def test_wrong_answers_beyond_the_limit_tell_the_holder_what_to_do(
    rt: Runtime, operator: Actor
) -> None:
    _, token = _locked(rt, operator)
    c = ra_web.client(rt)
    url = f"/portal/reset/{token}"
    for _ in range(2):
        assert _post(c, url, answer1="a", answer2="b").status_code == 401
    dead = _post(c, url, answer1="a", answer2="b")
    assert dead.status_code == 404
    assert "too many answers" in dead.text
    assert "Forgotten your passcode" in dead.text


def test_forgotten_passcode_page_answers_alike(rt: Runtime, operator: Actor) -> None:
    rt.settings.reset_request_min_seconds = 0
    a.open_org(rt, operator)
    h = a.holder(rt, operator)
    c = ra_web.client(rt)
    known = _post(c, "/portal/forgotten", page_url="/portal", identifier=h.email)
    unknown = _post(c, "/portal/forgotten", page_url="/portal", identifier="nobody@example.org")
    assert known.status_code == unknown.status_code == 200
    strip = re.compile(r'name="csrf_token" value="[^"]+"')
    assert strip.sub("", known.text) == strip.sub("", unknown.text)
    empty = _post(c, "/portal/forgotten", page_url="/portal", identifier="")
    assert empty.status_code == 422
    assert 'href="#f-identifier"' in empty.text


def _invited(rt: Runtime, operator: Actor) -> tuple[f.IssuedFixture, str, str]:
    """An issued card invited by its RA: the card, the link's token, the code by SMS."""
    f.org(rt, operator)
    card = f.issued_card(rt, operator)
    with rt.db() as s:
        org_id = directory.get_org(s, "ORG1").id
    ctx = RaContext(
        actor=operator, organisation_id=org_id, organisation_code="ORG1", role="ra_agent"
    )
    ra_cards.invite(
        rt,
        ctx,
        card.user_id,
        issuance_passcode=f.ISSUANCE_PASSCODE,
        email="invitee@example.org",
        phone="+447700900123",
    )
    box = MemoryOutbox()
    p.memory_dispatcher(rt, box).drain()
    token = p.token_in(box.emails[0].text, "invitation")
    code = re.search(r"\b\d{6}\b", box.sms[0].text).group(0)  # type: ignore[union-attr]
    return card, token, code


def test_invitation_through_the_pages(rt: Runtime, operator: Actor) -> None:
    card, token, code = _invited(rt, operator)
    c = ra_web.client(rt)
    url = f"/portal/invitation/{token}"
    wrong = _post(c, url, code="000000" if code != "000000" else "111111")
    assert wrong.status_code == 422
    step = _post(c, url, code=code)
    assert step.headers["location"] == f"{url}/setup"
    fields = {
        "passcode": NEW,
        "confirm": NEW,
        "question1": "What was the name of your first pet?",
        "question2": "In which town or city were you born?",
        "question3": "",
        "own_question3": "Who was your best friend at school?",
        "answer1": "Rex",
        "answer2": "Leeds",
        "answer3": "Sam",
        "recovery_code": "yes",
    }
    same = _post(c, f"{url}/setup", **{**fields, "answer2": "rex"})
    assert same.status_code == 422
    assert "same as another answer" in same.text
    assert 'value="Rex"' not in same.text
    weak = _post(c, f"{url}/setup", **fields, card_pin="123456", card_pin_confirm="123456")
    assert weak.status_code == 422
    assert 'href="#f-card_pin"' in weak.text
    assert 'value="123456"' not in weak.text
    differ = _post(c, f"{url}/setup", **fields, card_pin="27182818", card_pin_confirm="27182819")
    assert differ.status_code == 422
    assert 'href="#f-card_pin_confirm"' in differ.text
    directory.update_policy(rt, operator, "ORG1", {"card_pin_min_length": 8})
    short = _post(c, f"{url}/setup", **fields, card_pin="2718281", card_pin_confirm="2718281")
    assert short.status_code == 422
    assert "Your organisation asks for a card PIN of at least 8 digits" in short.text
    assert _status(rt, card.card_id) != "active"
    done = _post(c, f"{url}/setup", **fields, card_pin="27182818", card_pin_confirm="27182818")
    assert done.status_code == 200
    assert re.search(r"[A-Z2-7]{4}(-[A-Z2-7]{4}){7}", done.text)
    assert _status(rt, card.card_id) == "active"
    with rt.db() as s:  # the card's PIV applet, built with the card PIN chosen here
        piv = s.get(PivCard, card.card_id)
        assert piv is not None
        assert piv.origin is AppletOrigin.SERVICE
        assert b"27182818" not in piv.secrets


def test_development_outbox_is_there_only_in_development(rt: Runtime, operator: Actor) -> None:
    _, _token = _locked(rt, operator)
    c = ra_web.client(rt)
    assert c.get("/portal/dev/outbox").status_code == 404
    rt.settings.development = True
    f.person(rt, operator, "ORG1")  # something else happens meanwhile
    with rt.db() as s:
        card = s.query(Card).first()
        assert card is not None
    outbox = FileOutbox(rt.settings.outbox_dir)
    from cardvault.services.recovery import reset_links
    from cardvault.store.db import transaction

    with transaction(rt.db) as s:
        row = s.get(Card, card.id)
        assert row is not None
        reset_links.send_reset_link(s, rt, operator, row, trigger="requested")
    Dispatcher(rt, Senders(email=outbox, sms=outbox)).drain()
    listing = c.get("/portal/dev/outbox")
    assert listing.status_code == 200
    (entry,) = outbox.list_messages()
    assert entry.message_id in listing.text
    shown = c.get(f"/portal/dev/outbox/{entry.message_id}")
    token = p.token_in(shown.text)
    assert f'href="{rt.settings.base_url}/portal/reset/{token}"' in shown.text
    assert "development outbox" in c.get("/portal").text


def test_link_tokens_are_redacted_in_the_access_log() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/portal/reset/" + "A" * 43 + "/factor", "1.1", 200),
        None,
    )
    RedactLinkTokens().filter(record)
    assert "A" * 43 not in record.getMessage()
    assert "/portal/reset/…/factor" in record.getMessage()


@pytest.fixture(autouse=True)
def _quick(rt: Runtime) -> None:
    rt.settings.reset_request_min_seconds = 0


def _expiry(rt: Runtime, token: str) -> datetime:
    with rt.db() as s:
        expires = s.scalar(
            select(Link.expires_at).where(Link.token_hash == links.token_hash(token))
        )
        assert expires is not None
        return expires


@pytest.mark.parametrize("kind", ["reset", "invitation"])
def test_a_link_opened_in_its_last_minute_says_so_to_the_second_then_when_it_expired(
    rt: Runtime, operator: Actor, kind: str
) -> None:
    token = _locked(rt, operator)[1] if kind == "reset" else _invited(rt, operator)[1]
    expires = _expiry(rt, token)
    clock = p.Clock(expires - timedelta(seconds=61))
    rt.clock = clock
    c = ra_web.client(rt)
    url = f"/portal/{kind}/{token}"
    early = c.get(url).text
    assert "less than a minute" not in early
    assert f"expires at {expires:%d %b %Y %H:%M} UTC" in early
    clock.advance(seconds=2)  # 59 seconds left
    late = c.get(url).text
    assert f"expires in less than a minute, at {expires:%H:%M:%S} UTC" in late
    clock.advance(seconds=59)  # its last second gone
    gone = c.get(url)
    assert gone.status_code == 404
    assert f"This link expired on {format_when(expires)}." in gone.text
