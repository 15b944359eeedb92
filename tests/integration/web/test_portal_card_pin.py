"""The card PIN on the portal's "My card" (issues 18 and 19), through the real pages on
SQLite and PostgreSQL: set it, change it with the current one, and after a block set a new
one once signed in again; the organisation's shortest PIN; audited and emailed."""

from __future__ import annotations

import time

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.support import auth as a
from tests.support import factories as f
from tests.support import portal as p
from tests.support import ra_web

from cardvault.notify.outbox import MemoryOutbox
from cardvault.services.directory import registry as directory
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import AuditEvent, PivCard

URL = "/portal/card/pin"
SEVEN = "2718281"
NEW = "31415926"
PIN_ACTIONS = ("piv.pin_set", "piv.piv_pin_changed", "piv.pin_unblocked")


def _post(c: TestClient, url: str, page_url: str | None = None, **fields: str) -> httpx.Response:
    page = c.get(page_url or url)
    assert page.status_code == 200, page.text[:400]
    return c.post(url, data={"csrf_token": ra_web.csrf(page.text), **fields})


def _sign_in(c: TestClient, h: a.HolderFixture, at: float) -> None:
    first = _post(c, "/portal/card", identifier=h.email, passcode=f.STRONG_PASSCODE)
    assert first.status_code == 303, first.text[:500]
    second = _post(c, "/portal/card/login/code", code=h.code(at))
    assert second.headers["location"] == "/portal/card"


def _pin_actions(rt: Runtime, card_id: str) -> list[tuple[str, str | None]]:
    with rt.db() as s:
        rows = s.scalars(
            select(AuditEvent)
            .where(AuditEvent.card_id == card_id, AuditEvent.action.in_(PIN_ACTIONS))
            .order_by(AuditEvent.seq)
        )
        return [(e.action, (e.details or {}).get("via")) for e in rows]


def test_a_holder_sets_changes_and_after_a_block_replaces_the_card_pin(
    rt: Runtime, operator: Actor
) -> None:
    a.open_org(rt, operator)
    directory.update_policy(rt, operator, "ORG1", {"card_pin_min_length": 7})
    h = a.holder(rt, operator, forename="Ann")
    c = ra_web.client(rt)
    assert c.get(URL).status_code == 303  # signed out: back to the sign-in
    _sign_in(c, h, time.time())
    assert "Set your card PIN" in c.get("/portal/card").text
    page = c.get(URL).text
    assert "Your organisation asks for 7 or 8 digits." in page
    assert "6 to 8" not in page
    assert 'name="current"' not in page

    short = _post(c, URL, pin="135790", confirm="135790")
    assert short.status_code == 422
    assert "Your organisation asks for a card PIN of at least 7 digits" in short.text
    assert 'href="#f-pin"' in short.text
    weak = _post(c, URL, pin="1111111", confirm="1111111")
    assert weak.status_code == 422
    assert "one digit repeated" in weak.text
    differ = _post(c, URL, pin=SEVEN, confirm=NEW)
    assert differ.status_code == 422
    assert 'href="#f-confirm"' in differ.text
    assert SEVEN not in differ.text  # secrets are not sent back
    with rt.db() as s:
        assert s.get(PivCard, h.card.card_id) is None  # nothing was built

    done = _post(c, URL, pin=SEVEN, confirm=SEVEN)
    assert done.status_code == 303, done.text[:800]
    home = c.get("/portal/card").text
    assert "Your card PIN has been set" in home
    assert "Change your card PIN" in home

    page = c.get(URL).text
    assert 'name="current"' in page
    missing = _post(c, URL, current="", pin=NEW, confirm=NEW)
    assert missing.status_code == 422
    assert "Enter your current card PIN" in missing.text
    assert "3 tries left" in missing.text  # an empty field cost no try
    wrong = _post(c, URL, current="99990000", pin=NEW, confirm=NEW)
    assert wrong.status_code == 401
    assert "That is not your current card PIN" in wrong.text
    assert "2 tries left" in wrong.text
    changed = _post(c, URL, current=SEVEN, pin=NEW, confirm=NEW)
    assert changed.status_code == 303
    assert "Your card PIN has been changed" in c.get("/portal/card").text

    for _ in range(3):
        _post(c, URL, current="99990000", pin=SEVEN, confirm=SEVEN)
    blocked = c.get(URL)
    assert "sign in again with your passcode and second factor" in blocked.text
    assert 'name="pin"' not in blocked.text
    token = ra_web.csrf(c.get("/portal/card").text)
    refused = c.post(URL, data={"csrf_token": token, "pin": SEVEN, "confirm": SEVEN})
    assert refused.status_code == 403
    assert "blocked" in refused.text

    assert _post(c, "/portal/card/logout", "/portal/card").status_code == 303
    _sign_in(c, h, time.time() + 30)
    assert "Your card PIN is blocked" in c.get("/portal/card").text
    page = c.get(URL).text
    assert "Set a new card PIN" in page
    assert 'name="current"' not in page
    unblocked = _post(c, URL, pin=SEVEN, confirm=SEVEN)
    assert unblocked.status_code == 303, unblocked.text[:800]
    assert "Your new card PIN has been set" in c.get("/portal/card").text

    assert _pin_actions(rt, h.card.card_id) == [
        ("piv.pin_set", "portal"),
        ("piv.piv_pin_changed", "portal"),
        ("piv.pin_unblocked", "portal"),
    ]
    box = MemoryOutbox()
    p.memory_dispatcher(rt, box).drain()
    texts = [e.text for e in box.emails if e.to == h.email]
    assert any("a card PIN for smartcard software was set" in t for t in texts)
    assert any("the card PIN of your card was changed" in t for t in texts)
    assert any("a new card PIN was set for your card after it was blocked" in t for t in texts)
    assert not any(pin in t for t in texts for pin in (SEVEN, NEW))
