"""The portal's holder pages over HTTP: an invitation that ends with a second factor, and
My card (sign-in, passcode, questions, recovery code, phones, recent use, sign-out)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.support import auth as a
from tests.support import factories as f
from tests.support import keys as k
from tests.support import phones, qr, ra_web
from tests.support import portal as p
from tests.support.soft_ctap2 import SoftCtap2Device

from cardvault.notify.outbox import MemoryOutbox
from cardvault.services.devices import pairing
from cardvault.services.directory import registry as directory
from cardvault.services.ra import cards as ra_cards
from cardvault.services.ra.actions import RaContext
from cardvault.services.signin.engine import Engine, LoginRequest
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import AuditEvent, Card, CardSession, WebSession

NEW = "violet tractor umbrella 1987"
OTHER = "marble kettle horizon 2024"
FACTOR = "/portal/setup/second-factor"


def _post(c: TestClient, url: str, page_url: str | None = None, **fields: str) -> httpx.Response:
    page = c.get(page_url or url)
    assert page.status_code == 200, page.text[:400]
    return c.post(url, data={"csrf_token": ra_web.csrf(page.text), **fields})


def _invited(rt: Runtime, operator: Actor, **policy: object) -> tuple[TestClient, f.IssuedFixture]:
    """An invitation finished up to its passcode and questions, in a browser-like client."""
    f.org(rt, operator, networks=a.LOOPBACK, policy=policy or None)
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
    c = ra_web.client(rt)
    url = f"/portal/invitation/{token}"
    assert _post(c, url, code=code).status_code == 303
    fields = {
        "passcode": NEW,
        "confirm": NEW,
        "question1": f.QUESTIONS[0],
        "question2": f.QUESTIONS[1],
        "question3": f.QUESTIONS[2],
        "answer1": "Rex",
        "answer2": "Leeds",
        "answer3": "Sam",
    }
    done = _post(c, f"{url}/setup", **fields)
    assert done.status_code == 200
    assert "One more step" in done.text
    assert "Your card is ready" not in done.text
    return c, card


def _login(rt: Runtime, email: str, passcode: str, code: str) -> str:
    """A sign-in through the engine: the passcode, then the one-time code."""
    engine = Engine(rt)
    started = engine.login(
        a.client(), LoginRequest(identifier_kind="email", identifier=email, passcode=passcode)
    )
    assert started.factor_error is None, started.factor_error
    return engine.complete_code(a.client(), started.transaction_id, code).session_id


def test_an_invitation_ends_with_a_paired_phone_and_a_card_that_signs_in(
    rt: Runtime, operator: Actor, tmp_path: Path
) -> None:
    c, _card = _invited(rt, operator)
    early = _post(c, f"{FACTOR}/done", FACTOR)
    assert early.status_code == 422
    assert "no phone or security key yet" in early.text
    shown = _post(c, f"{FACTOR}/pair", FACTOR)
    assert shown.status_code == 200
    assert shown.headers["cache-control"] == "no-store"
    uri = qr.read_page_qr(shown.text, tmp_path)
    key = phones.dcrypto.DeviceKey.generate()
    done = pairing.pair(rt, a.client(), phones.pair_request(phones.pairing_token(uri), key, NEW))
    phone = phones.Phone(key, done.device_id, done.totp_secret)
    ready = _post(c, f"{FACTOR}/done", FACTOR)
    assert ready.status_code == 200
    assert "Your card is ready" in ready.text
    assert _login(rt, "invitee@example.org", NEW, phone.code())
    # the setup is over for this browser
    assert c.get(FACTOR).status_code == 303


def _session_data(rt: Runtime) -> dict[str, object]:
    with rt.db() as s:
        (row,) = s.scalars(select(WebSession)).all()
        return dict(row.data)


def test_a_security_key_ends_the_setup_by_post_and_the_ready_page_changes_nothing(
    rt: Runtime, operator: Actor
) -> None:
    c, card = _invited(rt, operator)
    page = c.get(FACTOR)
    script_csrf = re.search(r'data-csrf="([^"]+)"', page.text)
    assert script_csrf is not None
    csrf = {"X-CSRF-Token": script_csrf.group(1)}
    api = "/portal/api/setup/second-factor/key"
    # before the key: the ready page neither ends the setup nor says the card is ready
    before = _session_data(rt)
    assert c.get(f"{FACTOR}/ready").headers["location"] == FACTOR
    assert _session_data(rt) == before
    options = c.post(f"{api}/begin", headers=csrf).json()
    answer = k.make_credential_for(rt, SoftCtap2Device(pin=k.PIN), options)
    done = c.post(f"{api}/complete", headers=csrf, json={"credential": answer, "nickname": "K"})
    assert done.json() == {"next": f"{FACTOR}/ready"}
    ended = _session_data(rt)
    assert ended["setup_ready_serial"] == card.serial
    assert not {"setup_serial", "setup_org", "setup_until", "setup_ceremony"} & ended.keys()
    assert c.get(FACTOR).status_code == 303  # the POST ended the setup
    for _ in range(2):
        ready = c.get(f"{FACTOR}/ready")
        assert ready.status_code == 200
        assert "Your card is ready" in ready.text
        assert card.serial in ready.text
        assert _session_data(rt) == ended


def test_in_person_only_where_the_policy_allows_it(rt: Runtime, operator: Actor) -> None:
    c, _card = _invited(rt, operator)
    page = c.get(FACTOR)
    assert "My RA will add one in person" not in page.text
    refused = c.post(f"{FACTOR}/in-person", data={"csrf_token": ra_web.csrf(page.text)})
    assert refused.status_code == 403
    assert "asks you to set up your phone or a security key now" in refused.text


def test_in_person_is_audited_when_allowed(rt: Runtime, operator: Actor) -> None:
    c, card = _invited(rt, operator, in_person_methods=True)
    done = _post(c, f"{FACTOR}/in-person", FACTOR)
    assert done.status_code == 200
    assert "Your Registration Authority will finish your card" in done.text
    with rt.db() as s:
        actions = set(
            s.scalars(select(AuditEvent.action).where(AuditEvent.card_id == card.card_id))
        )
    assert "card.second_factor_in_person" in actions


def _signed_in(rt: Runtime, operator: Actor) -> tuple[TestClient, a.HolderFixture]:
    a.open_org(rt, operator)
    h = a.holder(rt, operator, forename="Ann")
    c = ra_web.client(rt)
    first = _post(c, "/portal/card", identifier=h.email, passcode=f.STRONG_PASSCODE)
    assert first.status_code == 303, first.text[:500]
    assert first.headers["location"] == "/portal/card/login/code"
    second = _post(c, "/portal/card/login/code", code=h.code())
    assert second.status_code == 303, second.text[:500]
    assert second.headers["location"] == "/portal/card"
    return c, h


def test_my_card_signs_in_with_passcode_and_second_factor(rt: Runtime, operator: Actor) -> None:
    c, h = _signed_in(rt, operator)
    home = c.get("/portal/card")
    assert home.status_code == 200
    assert h.card.serial in home.text
    assert "Authenticator app" in home.text
    assert "Change your passcode" in home.text
    assert 'data-logout="/portal/card/logout"' in home.text


def test_a_wrong_passcode_at_sign_in_says_nothing_more(rt: Runtime, operator: Actor) -> None:
    a.open_org(rt, operator)
    h = a.holder(rt, operator)
    c = ra_web.client(rt)
    wrong = _post(c, "/portal/card", identifier=h.email, passcode="not the passcode at all")
    unknown = _post(c, "/portal/card", identifier="nobody@example.org", passcode="whatever it is")
    assert wrong.status_code == unknown.status_code == 401
    assert "There is a problem" in wrong.text


def test_pages_need_a_signed_in_holder(rt: Runtime, operator: Actor) -> None:
    c = ra_web.client(rt)
    for path in ("passcode", "questions", "recovery-code", "activity", "pair"):
        r = c.get(f"/portal/card/{path}")
        assert r.status_code == 303
        assert r.headers["location"] == "/portal/card"


def test_change_passcode_through_the_pages(rt: Runtime, operator: Actor) -> None:
    c, h = _signed_in(rt, operator)
    url = "/portal/card/passcode"
    missing = _post(c, url, current="", passcode=OTHER, confirm=OTHER)
    assert missing.status_code == 422
    assert "Enter your current passcode" in missing.text
    wrong = _post(c, url, current="not my passcode", passcode=OTHER, confirm=OTHER)
    assert wrong.status_code == 401
    assert "2 attempts left" in wrong.text
    assert OTHER not in wrong.text  # secrets are not sent back
    weak = _post(c, url, current=f.STRONG_PASSCODE, passcode="password", confirm="password")
    assert weak.status_code == 422
    changed = _post(c, url, current=f.STRONG_PASSCODE, passcode=OTHER, confirm=OTHER)
    assert changed.status_code == 303
    assert "Your passcode has been changed" in c.get("/portal/card").text
    assert _login(rt, h.email, OTHER, h.code(time.time() + 30))


def test_a_form_without_its_csrf_token_is_refused(rt: Runtime, operator: Actor) -> None:
    c, _h = _signed_in(rt, operator)
    r = c.post(
        "/portal/card/passcode",
        data={"current": f.STRONG_PASSCODE, "passcode": OTHER, "confirm": OTHER},
    )
    assert r.status_code == 403


def test_questions_recovery_code_activity_and_sign_out(rt: Runtime, operator: Actor) -> None:
    c, h = _signed_in(rt, operator)
    fields = {
        "question1": f.QUESTIONS[0],
        "question2": f.QUESTIONS[1],
        "question3": "",
        "own_question3": "Name of my first bicycle?",
        "answer1": "Rex",
        "answer2": "Leeds",
        "answer3": "Raleigh",
    }
    same = _post(
        c, "/portal/card/questions", current=f.STRONG_PASSCODE, **{**fields, "answer3": "rex"}
    )
    assert same.status_code == 422
    assert "same as another answer" in same.text
    saved = _post(c, "/portal/card/questions", current=f.STRONG_PASSCODE, **fields)
    assert saved.status_code == 303
    made = _post(c, "/portal/card/recovery-code", current=f.STRONG_PASSCODE)
    assert made.status_code == 200
    assert re.search(r"[A-Z2-7]{4}(-[A-Z2-7]{4}){7}", made.text)
    used = c.get("/portal/card/activity")
    assert used.status_code == 200
    assert "Signed in from 127.0.0.1 with an authenticator code" in used.text
    assert "New recovery code made by the holder" in used.text
    out = _post(c, "/portal/card/logout", "/portal/card")
    assert out.status_code == 303
    assert c.get("/portal/card/activity").status_code == 303
    with rt.db() as s:
        assert s.scalar(select(CardSession.id).where(CardSession.card_id == h.card.card_id)) is None


def test_removing_the_authenticator_app(rt: Runtime, operator: Actor) -> None:
    c, h = _signed_in(rt, operator)
    home = c.get("/portal/card").text
    link = re.search(r'href="(/portal/card/methods/totp/[^"]+/remove)"', home)
    assert link is not None
    unticked = _post(c, link.group(1))
    assert unticked.status_code == 422
    wrong = _post(c, link.group(1), confirm="yes", current="not my passcode")
    assert wrong.status_code == 401
    assert "2 attempts left" in wrong.text
    gone = _post(c, link.group(1), confirm="yes", current=f.STRONG_PASSCODE)
    assert gone.status_code == 303
    assert "Your Registration Authority has been told" in c.get("/portal/card").text
    assert c.get(link.group(1)).status_code == 303  # nothing left to remove
    with rt.db() as s:
        card = s.get(Card, h.card.card_id)
        assert card is not None
