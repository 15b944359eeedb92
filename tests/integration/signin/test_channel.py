"""The session channel over real HTTP (DESIGN §3.5 revised): in-session requests travel as
``dir``/A256GCM under the session's channel key; replays, strangers and ended sessions are
refused with a clear problem, and nothing is done."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Iterator

import httpx
import pytest
from tests.support import auth as a
from tests.support import factories as f

from cardvault.clients.agent import core
from cardvault.clients.common.api import CardvaultApi
from cardvault.crypto import channel, envelope
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import AuditEvent, CardSession, UsedNonce

JOSE = {"Content-Type": "application/jose"}


@pytest.fixture
def http(live_url: str, rt: Runtime, operator: Actor) -> Iterator[httpx.Client]:
    a.local_network(rt, operator)
    with httpx.Client(base_url=live_url, timeout=30) as client:
        yield client


@pytest.fixture
def holder(rt: Runtime, operator: Actor) -> a.HolderFixture:
    a.open_org(rt, operator)
    return a.holder(rt, operator)


def _login(http: httpx.Client, h: a.HolderFixture) -> core.AgentState:
    data = core.LoginInput(identifier_kind="email", identifier=h.email, passcode=f.STRONG_PASSCODE)
    return core.login(CardvaultApi(http), "test", data, totp=h.code(), ask_code=lambda _: "")


def _sign_claims(state: core.AgentState) -> dict[str, object]:
    return {
        "token": state.token,
        "session_key": state.session_key,
        "key": "authentication",
        "digest": base64.b64encode(hashlib.sha256(b"record").digest()).decode(),
    }


def _key(state: core.AgentState) -> bytes:
    assert state.channel_key is not None
    return base64.b64decode(state.channel_key)


def _post(http: httpx.Client, token: str) -> httpx.Response:
    return http.post("/api/v1/card/sign", content=token, headers=JOSE)


def _signatures(rt: Runtime) -> int:
    with rt.db() as s:
        return s.query(AuditEvent).filter(AuditEvent.action == "card.signed").count()


def test_login_returns_a_channel_sealed_beside_the_session(
    http: httpx.Client, holder: a.HolderFixture, rt: Runtime
) -> None:
    state = _login(http, holder)
    assert state.channel_id
    assert len(_key(state)) == 32
    with rt.db() as s:
        row = s.get(CardSession, state.channel_id)
        assert row is not None
        assert row.channel_key is not None
        assert _key(state) not in row.channel_key  # sealed under the master key, not clear


def test_a_signature_travels_over_the_channel_both_ways(
    http: httpx.Client, holder: a.HolderFixture
) -> None:
    state = _login(http, holder)
    assert state.channel_id is not None
    token, jti = channel.seal_channel_request(
        _key(state), state.channel_id, _sign_claims(state), now=time.time()
    )
    response = _post(http, token)
    assert response.status_code == 200
    header = envelope.compact_header(response.text)
    assert header["alg"] == "dir"
    assert header["kid"] == state.channel_id
    answer = channel.open_channel_response(_key(state), state.channel_id, jti, response.text)
    assert answer["scheme"] == "rsa-pkcs1v15"
    # and the agent does the same by itself
    signed = core.sign(CardvaultApi(http), state, digest=bytes(32), key="authentication")
    assert signed["signature"]


def test_a_replayed_channel_request_is_refused(
    http: httpx.Client, holder: a.HolderFixture, rt: Runtime
) -> None:
    state = _login(http, holder)
    assert state.channel_id is not None
    token, _ = channel.seal_channel_request(
        _key(state), state.channel_id, _sign_claims(state), now=time.time()
    )
    assert _post(http, token).status_code == 200
    before = _signatures(rt)
    again = _post(http, token)
    assert again.status_code == 401
    assert again.json()["code"] == "envelope_replayed"
    assert _signatures(rt) == before


def test_another_sessions_kid_is_refused(
    http: httpx.Client, holder: a.HolderFixture, rt: Runtime, operator: Actor
) -> None:
    mine = _login(http, holder)
    other = _login(http, a.holder(rt, operator))
    assert mine.channel_id
    assert other.channel_id
    # my key, the other session's kid: it does not decrypt there
    token, _ = channel.seal_channel_request(
        _key(mine), other.channel_id, _sign_claims(other), now=time.time()
    )
    refused = _post(http, token)
    assert refused.status_code == 401
    assert refused.json()["code"] == "envelope_broken"
    # my channel carrying the other session's token: refused, not signed
    before = _signatures(rt)
    token, _ = channel.seal_channel_request(
        _key(mine), mine.channel_id, _sign_claims(other), now=time.time()
    )
    crossed = _post(http, token)
    assert crossed.status_code == 401
    assert crossed.json()["code"] == "channel_mismatch"
    assert _signatures(rt) == before


def test_the_channel_key_of_an_ended_session_is_refused(
    http: httpx.Client, holder: a.HolderFixture, rt: Runtime
) -> None:
    state = _login(http, holder)
    assert state.channel_id is not None
    core.logout(CardvaultApi(http), state)
    token, _ = channel.seal_channel_request(
        _key(state), state.channel_id, _sign_claims(state), now=time.time()
    )
    remembered = _nonces(rt)
    refused = _post(http, token)
    assert refused.status_code == 401
    body = refused.json()
    assert body["code"] == "channel_closed"
    assert "sign in again" in body["detail"].lower()
    assert _nonces(rt) == remembered  # refused before anything was written


def _nonces(rt: Runtime) -> int:
    with rt.db() as s:
        return s.query(UsedNonce).count()


def test_channel_headers_are_allow_listed(http: httpx.Client, holder: a.HolderFixture) -> None:
    state = _login(http, holder)
    assert state.channel_id is not None
    token, _ = channel.seal_channel_request(
        _key(state), state.channel_id, _sign_claims(state), now=time.time() - 3600
    )
    assert _post(http, token).json()["code"] == "envelope_expired"
    parts = token.split(".")
    header = envelope.compact_header(token)
    header["zip"] = "DEF"
    parts[0] = base64.urlsafe_b64encode(json.dumps(header).encode()).decode().rstrip("=")
    assert _post(http, ".".join(parts)).json()["code"] == "envelope_algorithm"


def test_clients_prefer_the_ecdh_transport_key(http: httpx.Client) -> None:
    keys = http.get("/.well-known/jwks.json").json()["keys"]
    algs = {k["alg"] for k in keys}
    assert algs == {"ECDH-ES+A256KW", "RSA-OAEP-256"}
    assert CardvaultApi(http).transport_key()["alg"] == "ECDH-ES+A256KW"
