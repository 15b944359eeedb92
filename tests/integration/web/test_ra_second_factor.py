"""The vRA Manager's second step, for sign-in and re-authentication, over HTTP on SQLite and
PostgreSQL: a one-time code (authenticator app or the paired phone's own), a push to the
paired phone (its number on this browser's page only), and what a refusal shows."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.support import auth as a
from tests.support import factories as f
from tests.support import phones as ph
from tests.support import ra_web as w

from cardvault.domain.vocabulary import CardStatus
from cardvault.services.devices import push_answers
from cardvault.services.devices.requests import authenticate
from cardvault.services.directory import registry as directory
from cardvault.services.signin.engine import MAX_FACTOR_FAILURES
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import AuthTransaction, Card, PushChallenge

NUMBER = re.compile(r'id="push-number"[^>]*>(\d\d)<')
LATER = 11 * 60  # past the re-authentication limit (10 minutes)


@pytest.fixture
def phone_ra(rt: Runtime, operator: Actor) -> tuple[str, ph.Phone]:
    """An RA whose only second factor is the paired phone."""
    a.open_org(rt, operator, "ORGA")
    card = f.active_card(rt, operator, "ORGA", email="phone.ra@example.org")
    directory.grant_role(rt, operator, user_id=card.user_id, org_code="ORGA", role="ra_manager")
    return "phone.ra@example.org", ph.pair(rt, operator, card.serial, "ORGA")


def _passcode(c: TestClient, email: str) -> httpx.Response:
    r = w.post(c, "/ra", identifier=email, passcode=f.STRONG_PASSCODE)
    assert r.status_code == 303, r.text[:1000]
    assert r.headers["location"] == "/ra/login/code"
    page = c.get("/ra/login/code")
    assert page.status_code == 200
    return page


def _failures(rt: Runtime) -> list[int]:
    with rt.db() as s:
        return [t.factor_failures for t in s.scalars(select(AuthTransaction))]


def _send_push(c: TestClient, flow: str = "login") -> tuple[str, str]:
    """Choose "Send a request to my phone": the waiting page and the number it shows."""
    sent = w.post(c, f"/ra/{flow}/push", page=f"/ra/{flow}/code")
    assert sent.status_code == 303, sent.text[:1000]
    assert sent.headers["location"] == f"/ra/{flow}/push"
    waiting = c.get(f"/ra/{flow}/push")
    assert waiting.status_code == 200
    number = NUMBER.search(waiting.text)
    assert number is not None
    return waiting.text, number.group(1)


def _challenge(rt: Runtime) -> str:
    with rt.db() as s:
        newest = s.scalars(select(PushChallenge).order_by(PushChallenge.created_at.desc())).first()
        assert newest is not None
        return newest.id


def test_an_ra_with_only_a_phone_signs_in_with_the_phones_code(
    rt: Runtime, phone_ra: tuple[str, ph.Phone]
) -> None:
    email, phone = phone_ra
    c = w.client(rt)
    page = _passcode(c, email)
    assert "Enter the code from the cardvault app on your phone" in page.text
    assert "Send a request to my phone" in page.text
    assert "security key" not in page.text

    r = w.post(c, "/ra/login/code", code=phone.code())
    assert r.status_code == 303, r.text[:1000]
    assert r.headers["location"] == "/ra/role"
    assert w.post(c, "/ra/role", role="ORGA:ra_manager").status_code == 303
    assert c.get("/ra/persons").status_code == 200


def test_a_wrong_code_is_one_failure_though_two_code_factors_try_it(
    rt: Runtime, operator: Actor
) -> None:
    a.open_org(rt, operator, "ORGA")
    ra = w.ra_user(rt, operator, "ORGA")
    ph.pair(rt, operator, ra.holder.card.serial, "ORGA")
    c = w.client(rt)
    page = _passcode(c, ra.email)
    assert "The cardvault app on your paired phone shows one too." in page.text
    wrong = "000000" if ra.code() != "000000" else "111111"

    refused = w.post(c, "/ra/login/code", code=wrong)

    assert refused.status_code == 401
    assert "The code is not right" in refused.text
    assert 'href="#f-code"' in refused.text
    assert wrong not in refused.text
    assert _failures(rt) == [1]
    r = w.post(c, "/ra/login/code", code=w.fresh_code(ra))  # the app's code still works
    assert r.headers["location"] == "/ra/role"


def test_too_many_wrong_codes_end_the_sign_in(rt: Runtime, phone_ra: tuple[str, ph.Phone]) -> None:
    email, phone = phone_ra
    c = w.client(rt)
    _passcode(c, email)
    wrong = "000000" if phone.code() != "000000" else "111111"
    for _ in range(MAX_FACTOR_FAILURES):
        assert w.post(c, "/ra/login/code", code=wrong).status_code == 401
    r = w.post(c, "/ra/login/code", code=phone.code())
    assert r.status_code == 303
    assert r.headers["location"] == "/ra"
    assert "start again" in c.get("/ra").text


def test_an_ra_with_only_a_phone_signs_in_by_an_approved_push(
    rt: Runtime, phone_ra: tuple[str, ph.Phone]
) -> None:
    email, phone = phone_ra
    c = w.client(rt)
    _passcode(c, email)
    waiting, number = _send_push(c)
    challenge_id = _challenge(rt)
    assert challenge_id not in waiting  # kept in the web session, not the page or a URL
    assert '<script src="/static/ui/push-wait.js" defer>' in waiting
    assert c.get("/ra/api/login/push").json() == {"status": "pending"}
    stranger = w.client(rt)
    assert stranger.get("/ra/api/login/push").status_code == 401
    assert number not in stranger.get("/ra/login/push").text

    early = w.post(c, "/ra/login/push/done", page="/ra/login/push")
    assert early.status_code == 409
    assert "has not answered the request yet" in early.text
    assert number in early.text  # the same number, still shown
    assert _failures(rt) == [0]

    phone.respond(rt, challenge_id, number)
    answered = c.get("/ra/api/login/push?wait=5")
    assert answered.json() == {"status": "approved"}
    assert answered.headers["cache-control"] == "no-store"
    done = w.post(c, "/ra/login/push/done", page="/ra/login/push")
    assert done.status_code == 303, done.text[:1000]
    assert done.headers["location"] == "/ra/role"


def test_a_denied_push_is_refused_and_the_page_offers_another_way(
    rt: Runtime, phone_ra: tuple[str, ph.Phone]
) -> None:
    email, phone = phone_ra
    c = w.client(rt)
    _passcode(c, email)
    _send_push(c)
    phone.respond(rt, _challenge(rt), "", decision="deny")

    refused = w.post(c, "/ra/login/push/done", page="/ra/login/push")

    assert refused.status_code == 401
    assert "The sign-in was denied on the phone." in refused.text
    assert 'href="#f-push"' in refused.text
    assert "Send a request to my phone" in refused.text
    assert 'name="code"' in refused.text
    assert _failures(rt) == [1]
    assert c.get("/ra/login/push").headers["location"] == "/ra/login/code"
    again = w.post(c, "/ra/login/push", page="/ra/login/code")  # the denial backs off
    assert again.status_code == 429
    assert "Too many sign-in requests" in again.text
    r = w.post(c, "/ra/login/code", code=phone.code())
    assert r.headers["location"] == "/ra/role"


# --- re-authentication -----------------------------------------------------------------


@contextmanager
def _later(rt: Runtime) -> Iterator[None]:
    real = rt.clock
    rt.clock = lambda: real() + timedelta(seconds=LATER)
    try:
        yield
    finally:
        rt.clock = real


def _to_reauth(c: TestClient, user_id: str) -> str:
    """Open a sensitive page: the re-authentication's passcode, then its second step."""
    action = f"/ra/persons/{user_id}/card/lock"
    r = c.get(action)
    assert r.status_code == 303
    assert r.headers["location"] == "/ra/reauth?next=" + action
    r = w.post(c, "/ra/reauth", page=r.headers["location"], next=action, passcode=f.STRONG_PASSCODE)
    assert r.status_code == 303, r.text[:1000]
    assert r.headers["location"] == "/ra/reauth/code"
    return action


def _signed_in_phone_ra(rt: Runtime, operator: Actor, email: str, phone: ph.Phone) -> TestClient:
    c = w.client(rt)
    _passcode(c, email)
    assert w.post(c, "/ra/login/code", code=phone.code()).status_code == 303
    assert w.post(c, "/ra/role", role="ORGA:ra_manager").status_code == 303
    return c


def test_reauthentication_with_the_phones_code_leads_to_the_action(
    rt: Runtime, operator: Actor, phone_ra: tuple[str, ph.Phone]
) -> None:
    email, phone = phone_ra
    c = _signed_in_phone_ra(rt, operator, email, phone)
    holder = f.active_card(rt, operator, "ORGA", forename="Hana")
    with _later(rt):
        action = _to_reauth(c, holder.user_id)
        page = c.get("/ra/reauth/code")
        assert "Confirm it is you" in page.text
        assert "Send a request to my phone" in page.text
        r = w.post(c, "/ra/reauth/code", code=phone.code(time.time() + LATER))
        assert r.status_code == 303, r.text[:1000]
        assert r.headers["location"] == action
        assert c.get(action).status_code == 200
        assert w.post(c, action, reason="Lost badge").status_code == 303
    with rt.db() as s:
        card = s.get(Card, holder.card_id)
        assert card is not None
        assert card.status == CardStatus.LOCKED


def test_reauthentication_with_an_approved_push_leads_to_the_action(
    rt: Runtime, operator: Actor, phone_ra: tuple[str, ph.Phone]
) -> None:
    email, phone = phone_ra
    c = _signed_in_phone_ra(rt, operator, email, phone)
    holder = f.active_card(rt, operator, "ORGA", forename="Hana")
    with _later(rt):
        action = _to_reauth(c, holder.user_id)
        _waiting, number = _send_push(c, "reauth")
        # the phone's signed request carries its own clock, as late as the service's
        caller = authenticate(
            rt, a.client(), phone.request(ts=time.time() + LATER), for_challenges=True
        )
        push_answers.answer(rt, caller, phone.answer(_challenge(rt), number))
        assert c.get("/ra/api/reauth/push").json() == {"status": "approved"}
        r = w.post(c, "/ra/reauth/push/done", page="/ra/reauth/push")
        assert r.status_code == 303, r.text[:1000]
        assert r.headers["location"] == action
        assert c.get(action).status_code == 200


def test_reauthentication_with_a_wrong_passcode_counts_toward_the_lockout(
    rt: Runtime, operator: Actor, phone_ra: tuple[str, ph.Phone]
) -> None:
    email, phone = phone_ra
    c = _signed_in_phone_ra(rt, operator, email, phone)
    holder = f.active_card(rt, operator, "ORGA", forename="Hana")
    with rt.db() as s:
        own = s.scalar(select(Card).where(Card.serial != holder.serial, Card.status == "active"))
        assert own is not None
        own_id = own.id
    with _later(rt):
        action = f"/ra/persons/{holder.user_id}/card/lock"
        reauth = "/ra/reauth?next=" + action
        r = w.post(c, "/ra/reauth", page=reauth, next=action, passcode="not-my-passcode-9")
        assert r.status_code == 401
        assert "Passcode or identifier not recognised" in r.text
        assert "not-my-passcode-9" not in r.text
        assert c.get("/ra/reauth/code").headers["location"].startswith("/ra/reauth?next=")
    with rt.db() as s:
        card = s.get(Card, own_id)
        assert card is not None
        assert card.failed_attempts == 1
