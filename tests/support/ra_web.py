"""Helpers for vRA Manager tests: an RA with a card and a TOTP authenticator, and a signed-in
browser-like client (TestClient over https, cookies kept, CSRF token read from each page)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import pyotp
from fastapi.testclient import TestClient

from cardvault.services.cards import methods as card_methods
from cardvault.services.directory import registry as directory
from cardvault.services.signin import sessions as card_sessions
from cardvault.services.signin.engine import Engine, LoginRequest
from cardvault.services.signin.factors import FactorAnswer
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.web.app import create_app
from tests.support import auth as a
from tests.support import keys as k
from tests.support.soft_ctap2 import SoftCtap2Device

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
FORM_ID = re.compile(r'name="form_id" value="([^"]+)"')


@dataclass(frozen=True, kw_only=True)
class RaUser:
    holder: a.HolderFixture
    org: str
    role: str

    @property
    def email(self) -> str:
        return self.holder.email

    def code(self, at: float | None = None) -> str:
        return self.holder.code(at)


def ra_user(rt: Runtime, actor: Actor, org: str, role: str = "ra_manager", **kw: str) -> RaUser:
    holder = a.holder(rt, actor, org, **kw)
    directory.grant_role(rt, actor, user_id=holder.card.user_id, org_code=org, role=role)
    return RaUser(holder=holder, org=org, role=role)


def client(rt: Runtime) -> TestClient:
    return TestClient(
        create_app(rt),
        base_url="https://testserver",
        follow_redirects=False,
        client=("127.0.0.1", 50000),
    )


def signed_in_ra(
    rt: Runtime, operator: Actor, org: str = "ORGA", role: str = "ra_manager", **kw: str
) -> tuple[TestClient, RaUser]:
    """The usual start of a vRA Manager test: an open organisation, an RA user of it, and a
    client signed in as that user."""
    a.open_org(rt, operator, org)
    user = ra_user(rt, operator, org, role, **kw)
    c = client(rt)
    sign_in(c, user)
    return c, user


def csrf(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def form_data(c: TestClient, url: str, **fields: str) -> dict[str, str]:
    """GET the page with the form, then the fields plus its CSRF token and form id."""
    page = c.get(url)
    assert page.status_code == 200, (url, page.status_code, page.text[:500])
    data = {"csrf_token": csrf(page.text), **fields}
    found = FORM_ID.search(page.text)
    if found:
        data["form_id"] = found.group(1)
    return data


def post(c: TestClient, url: str, *, page: str | None = None, **fields: str):  # type: ignore[no-untyped-def]
    return c.post(url, data=form_data(c, page or url, **fields))


_used_steps: set[tuple[str, int]] = set()


def fresh_code(user: RaUser, shift: float = 0) -> str:
    """A TOTP code for a time step not used before in this process (codes are single-use)."""
    now = time.time() + shift
    for offset in (0, 30, -30):
        step = int((now + offset) // 30)
        if (user.holder.totp_secret, step) not in _used_steps:
            _used_steps.add((user.holder.totp_secret, step))
            return pyotp.TOTP(user.holder.totp_secret).at(now + offset)
    raise AssertionError("no unused TOTP step in the window")


def sign_in(c: TestClient, user: RaUser, *, choose_role: bool = True) -> None:
    r = post(c, "/ra", identifier=user.email, passcode=a.f.STRONG_PASSCODE)
    assert r.status_code == 303, r.text[:2000]
    assert r.headers["location"] == "/ra/login/code"
    r = post(c, "/ra/login/code", code=fresh_code(user))
    assert r.status_code == 303, r.text[:2000]
    if choose_role:
        r = post(c, "/ra/role", role=f"{user.org}:{user.role}")
        assert r.status_code == 303, r.text[:2000]


def api_token(rt: Runtime, user: RaUser) -> str:
    """A bearer token of an RA API session acting under the user's role."""
    result = Engine(rt).login(
        a.client(),
        LoginRequest(
            identifier_kind="email",
            identifier=user.email,
            passcode=a.f.STRONG_PASSCODE,
            purpose="ra",
            second_factor=FactorAnswer(method="totp", code=fresh_code(user)),
        ),
    )
    assert result.session is not None
    token = result.session.token
    card_sessions.select_role(rt, a.client(), token, org_code=user.org, role=user.role)
    return token


def key_ra(
    rt: Runtime, operator: Actor, org: str = "ORGA", **names: str
) -> tuple[RaUser, SoftCtap2Device]:
    """An RA manager whose security key signs in alone (discoverable, no identifier typed)."""
    k.org(rt, operator, org)
    user = ra_user(rt, operator, org, **(names or {"forename": "Kira", "surname": "Keys"}))
    device = SoftCtap2Device(pin=k.PIN)
    k.register(rt, operator, user.holder.card, device, org_code=org, resident=True)
    return user, device


def key_sign_in(rt: Runtime, c: TestClient, device: SoftCtap2Device, user: RaUser) -> None:
    """Sign in with the security key alone, then the passcode; choose the RA role."""
    proof = k.key_first(rt, device).proof
    r = post(c, "/ra/login/key", page="/ra", proof=proof)
    assert (r.status_code, r.headers["location"]) == (303, "/ra/login/key")
    r = post(c, "/ra/login/key/passcode", page="/ra/login/key", passcode=a.f.STRONG_PASSCODE)
    assert r.status_code == 303, r.text[:2000]
    r = post(c, "/ra/role", role=f"{user.org}:{user.role}")
    assert r.status_code == 303


def key_reauth(rt: Runtime, c: TestClient, device: SoftCtap2Device, target: str) -> str:
    """Confirm it is you with the key again, then the passcode: where the browser goes."""
    page = f"/ra/reauth?next={target}"
    proof = k.key_first(rt, device).proof
    r = post(c, "/ra/reauth/key", page=page, proof=proof, next=target)
    assert (r.status_code, r.headers["location"]) == (303, "/ra/reauth/key")
    r = post(c, "/ra/reauth/key/passcode", page="/ra/reauth/key", passcode=a.f.STRONG_PASSCODE)
    assert r.status_code == 303, r.text[:2000]
    return str(r.headers["location"])


def ra_of_two(rt: Runtime, operator: Actor) -> tuple[RaUser, str]:
    """An RA manager in ORGA (TOTP app there) and agent in ORGB (another app; ORGB allows
    the app only): the RA's user and ORGB's app secret."""
    a.open_org(rt, operator, "ORGA")
    a.f.org(rt, operator, "ORGB", networks=a.LOOPBACK, policy={"second_factors": ["totp"]})
    user = ra_user(rt, operator, "ORGA", forename="Rana", surname="Twice")
    directory.add_membership(rt, operator, user.holder.card.user_id, "ORGB")
    directory.grant_role(
        rt, operator, user_id=user.holder.card.user_id, org_code="ORGB", role="ra_agent"
    )
    app = card_methods.add_totp(rt, operator, serial=user.holder.card.serial, org_code="ORGB")
    return user, app.secret
