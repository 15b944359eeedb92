"""The browser foundation on a tiny area of its own: cookie, CSRF, headers, errors, forms."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from typing import Annotated

import pytest
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.support import auth as a

from cardvault.errors import AuthenticationFailed, NotFound
from cardvault.services.signin import web_sessions
from cardvault.services.signin.engine import Engine
from cardvault.services.signin.web_sessions import WebSessionView
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import CardSession, WebSession
from cardvault.web import ui
from cardvault.web.app import create_app
from cardvault.web.deps import runtime

AREA = ui.WebArea(name="portal", prefix="/demo", title="Demo area", login_path="/demo/login")
session = ui.session_dependency(AREA)
router = APIRouter(prefix="/demo")


@router.get("/form")
def show(request: Request, view: Annotated[WebSessionView, Depends(session)]) -> Response:
    return ui.render(request, "ui/error.html", title="A form", message="hello")


@router.post("/form")
async def submit(
    request: Request,
    view: Annotated[WebSessionView, Depends(session)],
    rt: Annotated[Runtime, Depends(runtime)],
) -> Response:
    form = await ui.read_form(request)
    ui.check_csrf(view, form)
    first = web_sessions.claim_form(rt, view, form.get("form_id"))
    return Response("first" if first else "again")


@router.get("/missing")
def missing(view: Annotated[WebSessionView, Depends(session)]) -> Response:
    raise NotFound("There is no such thing.")


@router.get("/private")
def private(view: Annotated[WebSessionView, Depends(session)]) -> Response:
    raise ui.SignInRequired("Sign in first.")


@pytest.fixture
def client(rt: Runtime, operator: Actor) -> TestClient:
    a.local_network(rt, operator)
    app = create_app(rt)
    ui.add_area(app, AREA)
    app.include_router(router)
    return TestClient(app, base_url="https://testserver", client=(a.LOCAL, 50000))


def test_page_sets_a_strict_session_cookie_and_security_headers(client: TestClient) -> None:
    r = client.get("/demo/form")
    assert r.status_code == 200
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("__Host-cardvault-portal=")
    for flag in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/"):
        assert flag in cookie
    assert "Max-Age" not in cookie
    assert "Domain" not in cookie
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["cache-control"] == "no-store"
    # scripts only from files of this site (the CSP allows nothing else), never inline
    assert re.findall(r"<script\b[^>]*>", r.text)
    assert all(
        re.search(r' src="/static/[^"]+\.js"', t) for t in re.findall(r"<script\b[^>]*>", r.text)
    )
    assert "style=" not in r.text


def test_the_session_cookie_is_reused_and_only_its_hash_is_stored(
    client: TestClient, rt: Runtime
) -> None:
    client.get("/demo/form")
    token = client.cookies.get("__Host-cardvault-portal")
    second = client.get("/demo/form")
    assert "set-cookie" not in second.headers
    with rt.db() as s:
        rows = list(s.scalars(select(WebSession)))
    assert len(rows) == 1
    assert rows[0].token_hash == web_sessions.token_hash(token)
    assert token not in str(rows[0].__dict__)


def test_post_without_the_csrf_token_is_refused(client: TestClient) -> None:
    client.get("/demo/form")
    r = client.post("/demo/form", data={"csrf_token": "forged"})
    assert r.status_code == 403
    assert "This form has expired" in r.text
    assert r.headers["content-type"].startswith("text/html")


def test_a_form_id_is_accepted_once(client: TestClient) -> None:
    client.get("/demo/form")
    token = client.cookies.get("__Host-cardvault-portal")
    data = {"csrf_token": web_sessions.csrf_token(token), "form_id": "abc123"}
    assert client.post("/demo/form", data=data).text == "first"
    assert client.post("/demo/form", data=data).text == "again"


def test_another_sessions_csrf_token_does_not_work(client: TestClient, rt: Runtime) -> None:
    client.get("/demo/form")
    other = web_sessions.start(rt, "portal", client_address=None)
    r = client.post("/demo/form", data={"csrf_token": web_sessions.csrf_token(other.token)})
    assert r.status_code == 403


def test_errors_on_pages_are_pages_and_sign_in_redirects(client: TestClient) -> None:
    r = client.get("/demo/missing")
    assert r.status_code == 404
    assert "Page not found" in r.text
    assert "There is no such thing." in r.text
    r = client.get("/demo/private", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/demo/login"
    r = client.get("/demo/nowhere")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    api = client.get("/api/v1/nowhere")
    assert api.headers["content-type"] == "application/problem+json"


def test_idle_session_expires_and_a_new_one_starts(client: TestClient, rt: Runtime) -> None:
    client.get("/demo/form")
    old = client.cookies.get("__Host-cardvault-portal")
    with rt.db.begin() as s:
        row = s.scalar(select(WebSession))
        assert row is not None
        row.idle_expires_at = rt.clock() - timedelta(seconds=1)
    r = client.get("/demo/form")
    assert "set-cookie" in r.headers
    assert client.cookies.get("__Host-cardvault-portal") != old
    assert web_sessions.load(rt, "portal", old) is None


def test_reauthentication_is_needed_after_ten_minutes(rt: Runtime) -> None:
    view = web_sessions.start(rt, "portal", client_address=None)
    assert web_sessions.needs_reauthentication(rt, view)
    fresh = WebSessionView(**{**view.__dict__, "authenticated_at": rt.clock()})
    assert not web_sessions.needs_reauthentication(rt, fresh)
    old = WebSessionView(
        **{**view.__dict__, "authenticated_at": rt.clock() - timedelta(minutes=11)}
    )
    assert web_sessions.needs_reauthentication(rt, old)


def test_a_reauthentication_by_another_person_is_refused(rt: Runtime) -> None:
    """A signed-in web session takes a new card session only from the same person; another
    person's new session ends and the web session stays bound to its own."""
    operator = Actor.operator("tester")
    a.open_org(rt, operator)
    first, second = a.holder(rt, operator), a.holder(rt, operator)
    engine = Engine(rt)

    def card_session(h: a.HolderFixture, at: float | None = None) -> str:
        result = a.login(engine, h, code=h.code(at))
        assert result.session is not None
        return result.transaction_id

    view = web_sessions.start(rt, "ra", client_address=None)
    mine = web_sessions.sign_in(rt, view, card_session_id=card_session(first))
    theirs = card_session(second)
    with pytest.raises(AuthenticationFailed, match="not by the person signed in here"):
        web_sessions.sign_in(rt, mine, card_session_id=theirs)
    with rt.db() as s:
        assert s.get(CardSession, theirs) is None
        row = s.get(WebSession, mine.id)
        assert row is not None
        assert row.card_session_id == mine.card_session_id
        assert s.get(CardSession, mine.card_session_id) is not None
    # the holder themself, a time step later (each step's code is taken once)
    again = web_sessions.sign_in(rt, mine, card_session_id=card_session(first, time.time() + 30))
    assert again.card_session_id != mine.card_session_id
    assert again.person_id == mine.person_id


def test_maintenance_deletes_web_sessions_past_either_expiry_and_keeps_the_others(
    rt: Runtime,
) -> None:
    idle = web_sessions.start(rt, "portal", client_address=None)
    absolute = web_sessions.start(rt, "ra", client_address=None)
    alive = web_sessions.start(rt, "portal", client_address=None)
    with rt.db.begin() as s:
        s.get_one(WebSession, idle.id).idle_expires_at = rt.clock() - timedelta(seconds=1)
        s.get_one(WebSession, absolute.id).expires_at = rt.clock() - timedelta(seconds=1)
    assert web_sessions.purge_expired(rt) == 2
    with rt.db() as s:
        assert list(s.scalars(select(WebSession.id))) == [alive.id]
