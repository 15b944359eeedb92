"""The authentication API over real HTTP: envelopes, sessions, signatures, refusals."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Iterator

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from jwcrypto import jwe, jwk
from tests.support import auth as a
from tests.support import factories as f

from cardvault.clients.agent import core
from cardvault.clients.common.api import CardvaultApi, ServiceError
from cardvault.crypto import envelope
from cardvault.services.system.runtime import Actor, Runtime


@pytest.fixture
def http(live_url: str, rt: Runtime, operator: Actor) -> Iterator[httpx.Client]:
    a.local_network(rt, operator)
    with httpx.Client(base_url=live_url, timeout=30) as client:
        yield client


@pytest.fixture
def holder(rt: Runtime, operator: Actor) -> a.HolderFixture:
    a.open_org(rt, operator)
    return a.holder(rt, operator)


def _login(http: httpx.Client, h: a.HolderFixture, **kw: str) -> core.AgentState:
    data = core.LoginInput(
        identifier_kind="email", identifier=h.email, passcode=kw.get("passcode", f.STRONG_PASSCODE)
    )
    return core.login(CardvaultApi(http), "test", data, totp=h.code(), ask_code=lambda _: "")


def _raw(http: httpx.Client, claims: dict[str, object], **kw: object) -> httpx.Response:
    jwk_ = CardvaultApi(http).transport_key()
    sealed = envelope.seal_request(jwk_, claims, now=kw.pop("now", time.time()))  # type: ignore[arg-type]
    return http.post(
        "/api/v1/auth/login", content=sealed.token, headers={"Content-Type": "application/jose"}
    )


def test_login_sign_and_verify_with_the_certificate(
    http: httpx.Client, holder: a.HolderFixture
) -> None:
    state = _login(http, holder)
    digest = hashlib.sha256(b"hello clinical record").digest()
    signed = core.sign(CardvaultApi(http), state, digest=digest, key="authentication")
    cert = x509.load_pem_x509_certificate(signed["certificate"].encode())
    cert.public_key().verify(  # type: ignore[union-attr, call-arg]
        base64.b64decode(signed["signature"]),
        b"hello clinical record",
        padding.PKCS1v15(),
        hashes.SHA256(),
    )  # type: ignore[arg-type]
    info = core.status(CardvaultApi(http), state)
    assert info["card_serial"] == holder.card.serial


def test_content_commitment_needs_the_passcode_each_time(
    http: httpx.Client, holder: a.HolderFixture
) -> None:
    state = _login(http, holder)
    api = CardvaultApi(http)
    digest = hashlib.sha256(b"prescription").digest()
    with pytest.raises(ServiceError, match="needs your passcode"):
        core.sign(api, state, digest=digest, key="content-commitment")
    with pytest.raises(ServiceError, match="not right"):
        core.sign(api, state, digest=digest, key="content-commitment", passcode="nope nope 1")
    signed = core.sign(
        api, state, digest=digest, key="content-commitment", passcode=f.STRONG_PASSCODE
    )
    assert signed["scheme"] == "rsa-pkcs1v15"


def test_wrong_session_key_is_refused(http: httpx.Client, holder: a.HolderFixture) -> None:
    state = _login(http, holder)
    state.session_key = base64.b64encode(bytes(32)).decode()
    with pytest.raises(ServiceError, match="session key does not match"):
        core.sign(CardvaultApi(http), state, digest=bytes(32), key="authentication")


def test_logout_ends_the_session(http: httpx.Client, holder: a.HolderFixture) -> None:
    state = _login(http, holder)
    core.logout(CardvaultApi(http), state)
    with pytest.raises(ServiceError, match="session has ended"):
        core.status(CardvaultApi(http), state)


def test_unknown_and_wrong_look_the_same_over_http(
    http: httpx.Client, holder: a.HolderFixture
) -> None:
    def body(email: str) -> dict[str, object]:
        return {"identifier": {"kind": "email", "value": email}, "passcode": "bad guess 123"}

    wrong, unknown = _raw(http, body(holder.email)), _raw(http, body("ghost@example.org"))
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.headers["content-type"] == "application/problem+json"


def test_replayed_envelope_is_refused(http: httpx.Client, holder: a.HolderFixture) -> None:
    sealed = envelope.seal_request(
        CardvaultApi(http).transport_key(),
        {"identifier": {"kind": "email", "value": holder.email}, "passcode": "x"},
        now=time.time(),
    )
    headers = {"Content-Type": "application/jose"}
    first = http.post("/api/v1/auth/login", content=sealed.token, headers=headers)
    again = http.post("/api/v1/auth/login", content=sealed.token, headers=headers)
    assert first.status_code == 401
    assert again.status_code == 401
    assert again.json()["code"] == "envelope_replayed"


def test_expired_tampered_and_foreign_envelopes_are_refused(http: httpx.Client) -> None:
    claims: dict[str, object] = {
        "identifier": {"kind": "email", "value": "a@b.org"},
        "passcode": "x",
    }
    expired = _raw(http, claims, now=time.time() - 3600)
    assert expired.json()["code"] == "envelope_expired"
    sealed = envelope.seal_request(CardvaultApi(http).transport_key(), claims, now=time.time())
    parts = sealed.token.split(".")
    parts[3] = ("A" if parts[3][0] != "A" else "B") + parts[3][1:]
    tampered = http.post(
        "/api/v1/auth/login", content=".".join(parts), headers={"Content-Type": "application/jose"}
    )
    assert tampered.status_code == 401
    assert tampered.json()["code"] == "envelope_broken"
    other = jwk.JWK.generate(kty="RSA", size=2048)
    token = jwe.JWE(
        json.dumps(claims).encode(),
        json.dumps({"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": other.thumbprint()}),
    )
    token.add_recipient(other)
    foreign = http.post(
        "/api/v1/auth/login",
        content=token.serialize(compact=True),
        headers={"Content-Type": "application/jose"},
    )
    assert foreign.json()["code"] == "envelope_unknown_kid"


def test_oversized_and_plain_json_bodies_are_refused(http: httpx.Client) -> None:
    big = http.post(
        "/api/v1/auth/login", content=b"a" * 70000, headers={"Content-Type": "application/jose"}
    )
    assert big.status_code == 413
    assert big.json()["code"] == "too_large"
    plain = http.post("/api/v1/auth/login", json={"passcode": "in the clear"})
    assert plain.status_code == 422
    assert "application/jose" in plain.json()["detail"]


def test_second_factor_of_another_holder_is_refused(
    http: httpx.Client, rt: Runtime, operator: Actor, holder: a.HolderFixture
) -> None:
    other = a.holder(rt, operator)
    api = CardvaultApi(http)
    first = api.sealed_call(
        "/api/v1/auth/login",
        {"identifier": {"kind": "email", "value": holder.email}, "passcode": f.STRONG_PASSCODE},
    )
    with pytest.raises(ServiceError, match="not right"):
        api.sealed_call(
            "/api/v1/auth/factor",
            {
                "transaction_id": first["transaction_id"],
                "response": {"method": "totp", "code": other.code()},
            },
        )


def test_certificate_status_for_relying_parties(
    http: httpx.Client, rt: Runtime, operator: Actor, holder: a.HolderFixture
) -> None:
    state = _login(http, holder)
    certs = CardvaultApi(http).get("/api/v1/card/certificates", token=state.token)
    pem = certs["certificates"]["authentication"]
    fp = x509.load_pem_x509_certificate(pem.encode()).fingerprint(hashes.SHA256()).hex()
    assert (
        http.get("/api/v1/certificates/status", params={"fingerprint": fp}).json()["status"]
        == "good"
    )
    from cardvault.services.cards.issuance import revoke_card

    revoke_card(rt, operator, holder.card.serial, reason="stolen")
    assert (
        http.get("/api/v1/certificates/status", params={"fingerprint": fp}).json()["status"]
        == "revoked"
    )


@pytest.mark.parametrize(("algorithm", "scheme"), [("ecp256", None), ("rsa2048", "rsa-pss")])
def test_ecdsa_and_pss_signatures_verify(
    http: httpx.Client, rt: Runtime, operator: Actor, algorithm: str, scheme: str | None
) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

    a.open_org(rt, operator)
    h = a.holder(rt, operator, algorithm=algorithm)
    state = _login(http, h)
    digest = hashlib.sha256(b"lab result").digest()
    signed = core.sign(
        CardvaultApi(http), state, digest=digest, key="authentication", scheme=scheme
    )
    key = x509.load_pem_x509_certificate(signed["certificate"].encode()).public_key()
    sig = base64.b64decode(signed["signature"])
    if algorithm == "ecp256":
        assert signed["scheme"] == "ecdsa"
        key.verify(sig, digest, ec.ECDSA(Prehashed(hashes.SHA256())))  # type: ignore[call-arg, arg-type]
    else:
        key.verify(
            sig,
            digest,
            padding.PSS(
                padding.MGF1(hashes.SHA256()),  # type: ignore[call-arg, union-attr]
                padding.PSS.DIGEST_LENGTH,
            ),
            Prehashed(hashes.SHA256()),
        )  # type: ignore[arg-type]
