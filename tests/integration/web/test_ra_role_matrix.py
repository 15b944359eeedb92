"""The role matrix (issue 19): every vRA Manager route, every RA role, own and other
organisation, generated from the app's routes so that a new route cannot be missed.

Each route depends on exactly one ``RaGate`` naming the permission it needs; the test reads
it from the route. A role without that permission is refused (403, the role message); a
role with it gets past the gate (POSTs are sent with a wrong CSRF token, so they stop at
the form check and change nothing). An RA of the other organisation never reaches the
first organisation's person (404), whatever their role.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from tests.support import auth as a
from tests.support import factories as f
from tests.support import ra_web as w

from cardvault.domain.vocabulary import RaPermission, RaRole
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.web.api.ra_gate import ApiRaGate
from cardvault.web.app import create_app
from cardvault.web.ra.context import RaGate

ROLE_REFUSED = "Choose an RA role that allows this first."
CSRF_REFUSED = "This form has expired or did not come from this site."
#: sign-in and session pages that need no role (checked by test_ra_authorisation_matrix.py)
NO_ROLE = re.compile(
    r"/ra(|/role|/logout|/accessibility|/signed-out|/api/session(/extend)?"
    r"|(/api)?/(login|reauth)(/.*)?)"
)


def _gate(dependant: Dependant) -> RaGate | None:
    for dep in dependant.dependencies:
        if isinstance(dep.call, RaGate):
            return dep.call
        found = _gate(dep)
        if found is not None:
            return found
    return None


def ra_routes(rt: Runtime) -> list[tuple[str, str, RaGate | None]]:
    """Every (method, path, gate) of the vRA Manager."""
    app = create_app(rt)
    routes = [
        r for x in app.routes for r in getattr(getattr(x, "original_router", None), "routes", [x])
    ]
    return [
        (m, r.path, _gate(r.dependant))
        for r in routes
        if isinstance(r, APIRoute) and r.path.startswith("/ra")
        for m in sorted(r.methods)
    ]


def test_every_ra_route_names_one_permission_or_needs_no_role(rt: Runtime) -> None:
    routes = ra_routes(rt)
    assert len(routes) >= 60
    ungated = sorted({p for _m, p, g in routes if g is None and not NO_ROLE.fullmatch(p)})
    assert not ungated, f"vRA Manager routes without an RaGate: {ungated}"
    used = {g.permission for _m, _p, g in routes if g is not None}
    assert used == set(RaPermission), set(RaPermission) - used


@pytest.fixture
def world(rt: Runtime, operator: Actor) -> dict[str, Any]:
    a.open_org(rt, operator, "ORGA")
    a.open_org(rt, operator, "ORGB")
    victim = f.active_card(rt, operator, "ORGA", forename="Victor", surname="Victim")
    users = {
        (org, role): w.ra_user(rt, operator, org, role=role.value, forename=f"{org}{role.name}")
        for org in ("ORGA", "ORGB")
        for role in RaRole
    }
    return {"victim": victim, "users": users}


def _url(path: str, user_id: str) -> str:
    values = {"user_id": user_id, "decision": "approve", "action": "lock"}
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "0" * 36), path)


def _send(c: Any, method: str, url: str) -> Any:
    if method == "GET":
        return c.get(url)
    return c.post(url, data={"csrf_token": "wrong"}, headers={"x-csrf-token": "wrong"})


@pytest.mark.parametrize("role", list(RaRole), ids=lambda r: r.value)
def test_each_role_reaches_exactly_the_routes_its_permissions_name(
    rt: Runtime, world: dict[str, Any], role: RaRole
) -> None:
    victim = world["victim"]
    gated = [(m, p, g) for m, p, g in ra_routes(rt) if g is not None]
    own = w.client(rt)
    w.sign_in(own, world["users"][("ORGA", role)])
    other = w.client(rt)
    w.sign_in(other, world["users"][("ORGB", role)])
    for method, path, gate in gated:
        url = _url(path, victim.user_id)
        r = _send(own, method, url)
        if role.allows(gate.permission):
            assert ROLE_REFUSED not in r.text, (role, method, path)
            if method == "POST":
                refused_form = r.status_code == 403 and CSRF_REFUSED in r.text
                assert refused_form or r.status_code == 404, (role, method, path, r.status_code)
            else:
                assert r.status_code in (200, 303, 404, 422), (role, method, path, r.status_code)
        else:
            assert r.status_code == 403, (role, method, path, r.status_code)
            assert ROLE_REFUSED in r.text, (role, method, path)
        r = _send(other, method, url)
        assert "Victor" not in r.text, (role, method, path)
        if not role.allows(gate.permission):
            assert r.status_code == 403, (role, method, path, r.status_code)
        elif method == "GET" and "{user_id}" in path:
            assert r.status_code == 404, (role, method, path, r.status_code)


# --- the RA API ---------------------------------------------------------------------------------

#: RA API endpoints without a gate, and why: the RA's own roles and choosing one need none;
#: issuing a card reads its token from the sealed body and checks MANAGE_CARDS itself
API_UNGATED = {
    ("GET", "/api/v1/ra/roles"),
    ("POST", "/api/v1/ra/role"),
    ("POST", "/api/v1/ra/cards"),
}


def api_routes(rt: Runtime) -> list[tuple[str, str, ApiRaGate | None]]:
    app = create_app(rt)
    routes = [
        r for x in app.routes for r in getattr(getattr(x, "original_router", None), "routes", [x])
    ]
    return [
        (m, r.path, _api_gate(r.dependant))
        for r in routes
        if isinstance(r, APIRoute) and r.path.startswith("/api/v1")
        for m in sorted(r.methods)
    ]


def _api_gate(dependant: Dependant) -> ApiRaGate | None:
    for dep in dependant.dependencies:
        if isinstance(dep.call, ApiRaGate):
            return dep.call
        found = _api_gate(dep)
        if found is not None:
            return found
    return None


def test_every_ra_api_endpoint_names_one_permission(rt: Runtime) -> None:
    routes = api_routes(rt)
    ra = {(m, p) for m, p, g in routes if p.startswith("/api/v1/ra/") and g is None}
    assert ra == API_UNGATED
    gated = [g for _m, _p, g in routes if g is not None]
    assert len(gated) >= 20
    assert {g.permission for g in gated} >= set(RaPermission) - {RaPermission.READ_AUDIT}


@pytest.mark.parametrize("role", list(RaRole), ids=lambda r: r.value)
def test_each_role_reaches_exactly_the_api_endpoints_its_permissions_name(
    rt: Runtime, world: dict[str, Any], role: RaRole
) -> None:
    victim = world["victim"]
    gated = [(m, p, g) for m, p, g in api_routes(rt) if g is not None]
    c = w.client(rt)
    own = {"Authorization": f"Bearer {w.api_token(rt, world['users'][('ORGA', role)])}"}
    other = {"Authorization": f"Bearer {w.api_token(rt, world['users'][('ORGB', role)])}"}
    for method, path, gate in gated:
        for headers, user_id in ((own, "999999999999"), (other, victim.user_id)):
            url = _url(path, user_id).replace("{serial}", victim.serial)
            url += "?mode=nonsense" if url.endswith("/import") else ""
            r = c.request(method, url, headers=headers, json={} if method != "GET" else None)
            if not role.allows(gate.permission):
                assert r.status_code == 403, (role, method, path, r.status_code, r.text[:200])
            else:
                assert r.status_code != 403, (role, method, path, r.text[:300])
                assert r.status_code in (200, 404, 422), (role, method, path, r.status_code)
            assert "Victor" not in r.text, (role, method, path)
            if role.allows(gate.permission) and headers is other and "{" in path:
                assert r.status_code in (404, 422), (role, method, path, r.status_code)
