"""The authorisation matrix: every vRA Manager route and RA API endpoint, walked with an RA of
organisation A, an RA of organisation B, a card holder without an RA role and an anonymous
client. B never sees or changes A's persons, associations or events: A's objects answer 404."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import func, select
from tests.support import auth as a
from tests.support import factories as f
from tests.support import portal as p
from tests.support import ra_web as w

from cardvault.notify.outbox import MemoryOutbox
from cardvault.notify.ports import DeliveryFailed
from cardvault.services.cards import methods
from cardvault.services.networks import changes as org_networks
from cardvault.services.notifications import outbox as notifications
from cardvault.services.signin import sessions as card_sessions
from cardvault.services.signin.engine import Engine, LoginRequest
from cardvault.services.signin.factors import FactorAnswer
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import Association, AuditEvent, Card, Device, Organisation
from cardvault.web.app import create_app

UNDELIVERED = "no such mailbox"
SIGN_IN_PAGES = {"/ra", "/ra/login/code", "/ra/role", "/ra/reauth", "/ra/logout"}
#: pages for anyone, signed in or not, that show and change nothing of an organisation: the
#: accessibility statement, the signed-out page, and the session's own time limits
PUBLIC_PAGES = {"/ra/accessibility", "/ra/signed-out", "/ra/api/session", "/ra/api/session/extend"}


def _ra_routes(rt: Runtime) -> list[tuple[str, str]]:
    app = create_app(rt)
    out = []
    routes = [
        r for x in app.routes for r in getattr(getattr(x, "original_router", None), "routes", [x])
    ]
    for route in routes:
        if isinstance(route, APIRoute) and (
            route.path.startswith("/ra") or route.path.startswith("/api/v1/ra")
        ):
            out += [(m, route.path) for m in sorted(route.methods)]
    return out


@pytest.fixture
def world(rt: Runtime, operator: Actor):  # type: ignore[no-untyped-def]
    a.open_org(rt, operator, "ORGA")
    a.open_org(rt, operator, "ORGB")
    ra_b = w.ra_user(rt, operator, "ORGB", forename="Brenda")
    victim = f.active_card(rt, operator, "ORGA", forename="Victor", surname="Victim")
    assoc = methods.add_ad_account(
        rt, operator, serial=victim.serial, org_code="ORGA", account="ORGA\\victor"
    )
    holder = a.holder(rt, operator, "ORGB", forename="Holly")
    with rt.db.begin() as session:
        org_a = session.scalar(select(Organisation).where(Organisation.code == "ORGA"))
        assert org_a is not None
        phone = Device(
            card_id=victim.card_id,
            organisation_id=org_a.id,
            name="Victor's phone",
            platform="test",
            application="authenticator",
            public_key_der=b"key",
        )
        session.add(phone)
        session.flush()
        device_id = phone.id
    with transaction(rt.db) as session:  # an email to Victor that fails for good
        card = session.get(Card, victim.card_id)
        assert card is not None
        notifications.passcode_changed(session, rt, card)
    box = MemoryOutbox(failures=[DeliveryFailed(UNDELIVERED, permanent=True)] * 20)
    assert p.memory_dispatcher(rt, box).drain().failed >= 1
    return ra_b, victim, assoc.id, holder, device_id


def _fill(path: str, user_id: str, assoc_id: str, serial: str, device_id: str) -> str:
    values = {
        "user_id": user_id,
        "association_id": assoc_id,
        "serial": serial,
        "action": "lock",
        "device_id": device_id,
        "request_id": "0" * 36,
        "decision": "approve",
    }
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


def _state(rt: Runtime, org_code: str) -> tuple[object, ...]:
    with rt.db() as s:
        org = s.scalar(select(Organisation).where(Organisation.code == org_code))
        assert org is not None
        cards = tuple(
            s.scalars(
                select(Card.status).where(Card.organisation_id == org.id).order_by(Card.serial)
            )
        )
        assocs = s.scalar(
            select(func.count())
            .select_from(Association)
            .where(Association.organisation_id == org.id)
        )
        events = s.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.organisation_id == org.id)
        )
        return cards, assocs, events


def test_rb_never_sees_or_changes_organisation_a(rt: Runtime, world) -> None:  # type: ignore[no-untyped-def]
    ra_b, victim, assoc_id, _holder, device_id = world
    routes = _ra_routes(rt)
    assert len(routes) >= 25
    before = _state(rt, "ORGA")
    c = w.client(rt)
    w.sign_in(c, ra_b)
    token = w.csrf(c.get("/ra/persons").text)
    checked = 0
    for method, path in routes:
        if path in SIGN_IN_PAGES or path.startswith("/api/v1/ra") or "{" not in path:
            continue
        url = _fill(path, victim.user_id, assoc_id, victim.serial, device_id)
        if method == "GET":
            r = c.get(url)
        else:
            r = c.post(
                url,
                data={
                    "csrf_token": token,
                    "form_id": f"f{checked}",
                    "reason": "x",
                    "confirm": "yes",
                    "account": "ORGA\\mallory",
                    "uid": "04A22B1AC35E80",
                    "code": "123456",
                    "issuance_passcode": "whatever1",
                    "confirm_passcode": "whatever1",
                },
                headers={"x-csrf-token": token},
            )
        assert r.status_code == 404, (method, url, r.status_code, r.text[:300])
        assert "Victor" not in r.text, (method, url)
        checked += 1
    assert checked >= 20
    for url in (
        "/ra/persons?q=victim",
        "/ra/persons?q=" + victim.serial,
        "/ra/persons?q=" + victim.user_id,
        "/ra/audit",
        "/ra/audit?person=" + victim.user_id,
        "/ra/audit?card=" + victim.serial,
        "/ra/notifications/failed",
    ):
        r = c.get(url)
        assert r.status_code == 200, url
        assert "Victor" not in r.text, url
        assert UNDELIVERED not in r.text, url
        if "?q=" in url:
            assert "No person in ORGB matches" in r.text, url
        elif "=" in url:
            assert "No events match these filters." in r.text, url
        elif "notifications" in url:
            assert "No undelivered messages." in r.text, url
    csv = c.get("/ra/audit.csv").text
    assert victim.card_id not in csv
    assert "Victor" not in csv
    assert _state(rt, "ORGA") == before


def test_the_ra_api_answers_404_for_another_organisations_card(rt: Runtime, world) -> None:  # type: ignore[no-untyped-def]
    ra_b, victim, _assoc_id, _holder, device_id = world
    result = Engine(rt).login(
        a.client(),
        LoginRequest(
            identifier_kind="email",
            identifier=ra_b.email,
            passcode=f.STRONG_PASSCODE,
            purpose="ra",
            second_factor=FactorAnswer(method="totp", code=w.fresh_code(ra_b)),
        ),
    )
    assert result.session is not None
    token = result.session.token
    card_sessions.select_role(rt, a.client(), token, org_code="ORGB", role="ra_manager")
    before = _state(rt, "ORGA")
    c = w.client(rt)
    auth = {"Authorization": f"Bearer {token}"}
    assert c.get(f"/api/v1/ra/cards/{victim.serial}", headers=auth).status_code == 404
    r = c.post(f"/api/v1/ra/cards/{victim.serial}/revoke", json={"reason": "x"}, headers=auth)
    assert r.status_code == 404
    assert c.get(f"/api/v1/ra/cards/{victim.serial}/devices", headers=auth).status_code == 404
    r = c.post(f"/api/v1/ra/cards/{victim.serial}/pairing", json={}, headers=auth)
    assert r.status_code in (404, 422)
    assert (
        c.post(
            f"/api/v1/ra/devices/{device_id}/revoke", json={"reason": "x"}, headers=auth
        ).status_code
        == 404
    )
    assert _state(rt, "ORGA") == before


def test_a_holder_without_ra_role_gets_no_further_than_sign_in(rt: Runtime, world) -> None:  # type: ignore[no-untyped-def]
    _ra_b, victim, assoc_id, holder, device_id = world
    c = w.client(rt)
    r = w.post(c, "/ra", identifier=holder.email, passcode=f.STRONG_PASSCODE)
    assert r.status_code == 401
    assert "Passcode or identifier not recognised" in r.text
    _walk_anonymous(rt, c, victim.user_id, assoc_id, victim.serial, device_id)


def test_anonymous_clients_are_sent_to_sign_in(rt: Runtime, world) -> None:  # type: ignore[no-untyped-def]
    _ra_b, victim, assoc_id, _holder, device_id = world
    _walk_anonymous(rt, w.client(rt), victim.user_id, assoc_id, victim.serial, device_id)


def _walk_anonymous(
    rt: Runtime,
    c,
    user_id: str,
    assoc_id: str,
    serial: str,  # type: ignore[no-untyped-def]
    device_id: str,
) -> None:  # type: ignore[no-untyped-def]
    before = _state(rt, "ORGA")
    token = w.csrf(c.get("/ra").text)
    for method, path in _ra_routes(rt):
        if path in SIGN_IN_PAGES | PUBLIC_PAGES:
            continue
        url = _fill(path, user_id, assoc_id, serial, device_id)
        if method == "GET":
            r = c.get(url)
        else:
            r = c.request(
                method,
                url,
                data={"csrf_token": token, "reason": "x", "confirm": "yes"},
                headers={"x-csrf-token": token},
            )
        if path.startswith("/api/v1/ra") or path.startswith("/ra/api/"):
            assert r.status_code in (401, 422), (method, url, r.status_code)
        else:
            assert r.status_code == 303, (method, url, r.status_code)
            assert r.headers["location"] == "/ra"
        assert "Victor" not in r.text
    assert _state(rt, "ORGA") == before


MANAGER_ONLY = ("/ra/organisation/networks",)


def test_only_an_organisations_ra_manager_reaches_its_networks_page(  # type: ignore[no-untyped-def]
    rt: Runtime, operator: Actor, world
) -> None:
    ra_b = world[0]
    assert {p for _m, p in _ra_routes(rt)} >= set(MANAGER_ONLY)
    change = org_networks.NetworksChange(add=("192.0.2.0/24",))
    org_networks.change(rt, operator, change, code="ORGA")
    before = org_networks.show(rt, "ORGA").networks
    c = w.client(rt)
    w.sign_in(c, ra_b)
    for path in MANAGER_ONLY:  # B's manager sees and changes B's list only
        page = c.get(path)
        assert page.status_code == 200
        assert "192.0.2.0/24" not in page.text
        r = w.post(
            c, path, networks="127.0.0.0/8 ::1/128 198.51.100.0/24", shown="127.0.0.0/8 ::1/128"
        )
        assert r.status_code == 303, r.text[:500]
    assert "198.51.100.0/24" in org_networks.show(rt, "ORGB").networks
    for role in ("ra_agent", "auditor"):
        ra = w.ra_user(rt, operator, "ORGA", role=role, forename=role.replace("_", ""))
        c = w.client(rt)
        w.sign_in(c, ra)
        token = w.csrf(c.get("/ra/audit").text)
        assert ">Networks</a>" not in c.get("/ra/audit").text
        for path in MANAGER_ONLY:
            assert c.get(path).status_code == 403, (role, path)
            r = c.post(
                path,
                data={"csrf_token": token, "networks": "0.0.0.0/0", "shown": " ".join(before),
                      "allow_everywhere": "yes", "confirm_lock_out": "yes"},
            )  # fmt: skip
            assert r.status_code == 403, (role, path)
    assert org_networks.show(rt, "ORGA").networks == before
