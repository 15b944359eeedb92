"""The RA's JSON API for devices (what the vRA Manager pages call) against the live service,
with the reference app's client code pairing in-process."""

from __future__ import annotations

import ssl

import httpx
import pyotp
import pytest
from sqlalchemy import select
from tests.support import auth as a
from tests.support import factories as f

from cardvault.clients.authenticator import core
from cardvault.clients.authenticator.api import DeviceApi
from cardvault.crypto.device import DeviceKey
from cardvault.services.cards import enrolment, issuance, methods
from cardvault.services.signin import sessions as card_sessions
from cardvault.services.signin.engine import Engine, LoginRequest
from cardvault.services.signin.factors import FactorAnswer
from cardvault.services.system.runtime import Actor
from cardvault.store.models import Person

from .conftest import World

pytestmark = pytest.mark.slow


def _ra_token(world: World, operator: Actor) -> str:
    """Sign the RA in (passcode + TOTP) and choose the ra_agent role in ORG1."""
    rt = world.service.rt
    with rt.db() as s:
        uid = s.scalars(select(Person.user_id).where(Person.email == world.ra_email)).one()
    card = issuance.issue_card(
        rt,
        operator,
        issuance.IssueRequest(
            organisation="ORG1",
            user_id=uid,
            issuance_passcode=f.ISSUANCE_PASSCODE,
            key_algorithm="ecp256",
        ),
    )
    enrolment.enrol(rt, operator, f.enrol_request(card.serial))
    secret = methods.add_totp(rt, operator, serial=card.serial, org_code="ORG1").secret
    result = Engine(rt).login(
        a.client(),
        LoginRequest(
            identifier_kind="email",
            identifier=world.ra_email,
            passcode=f.STRONG_PASSCODE,
            purpose="ra",
            second_factor=FactorAnswer(method="totp", code=pyotp.TOTP(secret).now()),
        ),
    )
    assert result.session is not None, result.factor_error
    card_sessions.select_role(
        rt, a.client(), result.session.token, org_code="ORG1", role="ra_agent"
    )
    return result.session.token


def _tls(world: World) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(world.ca))


def test_ra_pairs_lists_and_revokes_a_device(world: World, operator: Actor) -> None:
    token = _ra_token(world, operator)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=world.service.url, verify=_tls(world)) as ra:
        made = ra.post(f"/api/v1/ra/cards/{world.serial}/pairing", json={}, headers=headers)
        assert made.status_code == 200, made.text
        assert made.headers["cache-control"] == "no-store"
        uri = made.json()["uri"]
        fields = core.parse_uri(uri, "pair")
        client = httpx.Client(base_url=fields["server"], verify=_tls(world))
        with DeviceApi(client) as api:
            state = core.pair(
                api,
                fields,
                core.PairInput(
                    uri=uri, passcode=f.STRONG_PASSCODE, name="RA test phone", platform="t"
                ),
            )
        listed = ra.get(f"/api/v1/ra/cards/{world.serial}/devices", headers=headers).json()
        assert [(d["id"], d["status"], d["connected"]) for d in listed] == [
            (state.device_id, "active", False)
        ]
        revoked = ra.post(f"/api/v1/ra/devices/{state.device_id}/revoke", json={}, headers=headers)
        assert revoked.json()["status"] == "revoked"
        key = DeviceKey.from_pem(state.device_key_pem.encode())
        client = httpx.Client(base_url=state.server, verify=_tls(world))
        with DeviceApi(client, device_id=state.device_id, key=key) as api:
            refused = client.get(
                "/api/v1/device", headers=api.headers("GET", "/api/v1/device", b"")
            )
        assert refused.status_code == 401
        assert refused.json()["code"] == "device_not_recognised"
        unknown = ra.get("/api/v1/ra/cards/CV99999999/devices", headers=headers)
        assert unknown.status_code in (404, 422)
