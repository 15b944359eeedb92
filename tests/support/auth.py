"""Helpers for authentication tests: a card with a TOTP authenticator, codes computed
independently with pyotp, and a login through the engine."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pyotp

from cardvault.services.cards import methods
from cardvault.services.signin.engine import Engine, LoginRequest, LoginResult
from cardvault.services.signin.factors import FactorAnswer
from cardvault.services.system.runtime import Actor, Runtime
from tests.support import factories as f

LOCAL = "127.0.0.1"
LOOPBACK = ["127.0.0.0/8", "::1/128"]


@dataclass(frozen=True, kw_only=True)
class HolderFixture:
    card: f.IssuedFixture
    email: str
    totp_secret: str

    def code(self, at: float | None = None) -> str:
        return pyotp.TOTP(self.totp_secret).at(at if at is not None else time.time())


def holder(rt: Runtime, actor: Actor, org: str = "ORG1", **kw: str) -> HolderFixture:
    email = kw.pop("email", None) or f"holder{time.monotonic_ns()}@example.org"
    card = f.active_card(rt, actor, org, email=email, **kw)
    prov = methods.add_totp(rt, actor, serial=card.serial, org_code=org)
    return HolderFixture(card=card, email=email, totp_secret=prov.secret)


def open_org(rt: Runtime, actor: Actor, code: str = "ORG1") -> str:
    return f.org(rt, actor, code, networks=LOOPBACK)


def local_network(rt: Runtime, actor: Actor) -> str:
    """An organisation of its own whose networks include loopback, so that the ingress gate
    admits a test's HTTP client to the API (tests whose other organisations have none)."""
    return f.org(rt, actor, "LOOPBACK", networks=LOOPBACK)


def client(address: str = LOCAL) -> Actor:
    return Actor(ref="anonymous", display="test client", client_address=address)


def login(
    engine: Engine,
    h: HolderFixture,
    *,
    passcode: str = f.STRONG_PASSCODE,
    code: str | None = None,
    address: str = LOCAL,
    purpose: str = "holder",
) -> LoginResult:
    second = FactorAnswer(method="totp", code=code) if code else None
    return engine.login(
        client(address),
        LoginRequest(
            identifier_kind="email",
            identifier=h.email,
            passcode=passcode,
            purpose=purpose,
            second_factor=second,
        ),
    )
