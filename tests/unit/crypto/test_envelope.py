from __future__ import annotations

import base64
import json
from functools import cache
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwcrypto import jwe as jwcrypto_jwe
from jwcrypto import jwk as jwcrypto_jwk

from cardvault.crypto.envelope import (
    MAX_LIFETIME_SECONDS,
    EnvelopeAlgorithm,
    EnvelopeBroken,
    EnvelopeExpired,
    EnvelopeLifetime,
    EnvelopeMalformed,
    EnvelopeTooLarge,
    EnvelopeUnknownKid,
    OpenedRequest,
    TransportKey,
    jwks,
    open_request,
    open_response,
    seal_request,
    seal_response,
)
from cardvault.errors import AuthenticationFailed, InvalidInput
from cardvault.strict_json import JsonNumberRefused, JsonTooDeep
from cardvault.web.errors import status_of

NOW = 1_800_000_000.0
CLAIMS = {"passcode": "correct horse battery", "card": "card-1"}


@cache
def transport_key() -> TransportKey:
    return TransportKey.generate()


@cache
def other_key() -> TransportKey:
    return TransportKey.generate()


def keys() -> dict[str, TransportKey]:
    return {transport_key().kid: transport_key()}


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def payload(**overrides: Any) -> dict[str, Any]:
    body = {
        **CLAIMS,
        "jti": "0123456789abcdefghij",
        "iat": int(NOW),
        "exp": int(NOW) + 60,
        "rk": b64url(bytes(range(32))),
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def jwcrypto_token(
    body: dict[str, Any] | bytes,
    header: dict[str, Any] | None = None,
    key: TransportKey | None = None,
) -> str:
    """A request sealed by the independent jwcrypto library."""
    key = key or transport_key()
    header = header or {"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": key.kid}
    plaintext = body if isinstance(body, bytes) else json.dumps(body).encode()
    algs = [header["alg"], header["enc"]]
    token = jwcrypto_jwe.JWE(plaintext, protected=json.dumps(header), algs=algs)
    token.add_recipient(jwcrypto_jwk.JWK(**key.public_jwk()))
    return str(token.serialize(compact=True))


def open_now(token: str, **kwargs: Any) -> OpenedRequest:
    return open_request(keys(), token, now=NOW, **kwargs)


# --- transport key --------------------------------------------------------------------------


def test_kid_is_the_rfc7638_thumbprint_as_jwcrypto_computes_it() -> None:
    key = transport_key()
    assert key.kid == jwcrypto_jwk.JWK(**key.public_jwk()).thumbprint()


def test_public_jwk_has_no_private_members() -> None:
    jwk = transport_key().public_jwk()
    assert set(jwk) == {"kty", "n", "e", "kid", "use", "alg"}
    assert (jwk["kty"], jwk["use"], jwk["alg"]) == ("RSA", "enc", "RSA-OAEP-256")


def test_transport_key_is_rsa_3072() -> None:
    n = jwcrypto_jwk.JWK(**transport_key().public_jwk()).get_op_key("encrypt").key_size
    assert n == 3072


def test_pem_round_trip_keeps_the_kid() -> None:
    key = transport_key()
    assert key.to_pem().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert TransportKey.from_pem(key.to_pem()).kid == key.kid


def test_from_pem_refuses_small_public_or_garbage_keys() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    small_pem = small.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = small.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for pem in (small_pem, public_pem, b"not a key"):
        with pytest.raises(InvalidInput):
            TransportKey.from_pem(pem)


def test_jwks_lists_every_public_key() -> None:
    document = jwks([transport_key(), other_key()])
    assert [k["kid"] for k in document["keys"]] == [transport_key().kid, other_key().kid]
    assert all("d" not in k for k in document["keys"])


# --- requests: round trip and interoperability ----------------------------------------------


def test_sealed_request_opens_with_claims_jti_exp_and_response_key() -> None:
    sealed = seal_request(transport_key().public_jwk(), CLAIMS, now=NOW)
    opened = open_now(sealed.token)
    assert opened.claims == CLAIMS
    assert opened.exp == int(NOW) + 60
    assert opened.kid == transport_key().kid
    assert len(opened.jti) >= 16
    assert opened.response_key == sealed.response_key
    assert len(sealed.response_key) == 32


def test_reprs_do_not_show_secrets() -> None:
    sealed = seal_request(transport_key().public_jwk(), CLAIMS, now=NOW)
    opened = open_now(sealed.token)
    assert "correct horse" not in repr(opened)
    assert repr(bytes(sealed.response_key)) not in repr(sealed)
    assert repr(transport_key()) == f"TransportKey(kid={transport_key().kid!r})"


def test_each_request_gets_a_fresh_jti_and_response_key() -> None:
    a = seal_request(transport_key().public_jwk(), CLAIMS, now=NOW)
    b = seal_request(transport_key().public_jwk(), CLAIMS, now=NOW)
    assert open_now(a.token).jti != open_now(b.token).jti
    assert a.response_key != b.response_key


def test_request_header_is_exactly_the_allowed_algorithms_and_kid() -> None:
    token = seal_request(transport_key().public_jwk(), CLAIMS, now=NOW).token
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": transport_key().kid}


def test_request_from_jwcrypto_opens() -> None:
    opened = open_now(jwcrypto_token(payload()))
    assert opened.claims == CLAIMS
    assert opened.jti == "0123456789abcdefghij"
    assert opened.response_key == bytes(range(32))


def test_request_sealed_here_decrypts_with_jwcrypto() -> None:
    sealed = seal_request(transport_key().public_jwk(), CLAIMS, ttl_seconds=30, now=NOW)
    private = jwcrypto_jwk.JWK.from_pem(transport_key().to_pem())
    token = jwcrypto_jwe.JWE()
    token.deserialize(sealed.token, key=private)
    body = json.loads(token.payload)
    assert {k: body[k] for k in CLAIMS} == CLAIMS
    assert body["exp"] - body["iat"] == 30
    assert base64.urlsafe_b64decode(body["rk"] + "=") == sealed.response_key


def test_the_right_key_is_chosen_by_kid() -> None:
    both = {transport_key().kid: transport_key(), other_key().kid: other_key()}
    sealed = seal_request(other_key().public_jwk(), CLAIMS, now=NOW)
    assert open_request(both, sealed.token, now=NOW).kid == other_key().kid


# --- requests: refusals ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alg", "enc"),
    [
        ("RSA1_5", "A256GCM"),
        ("RSA-OAEP", "A256GCM"),
        ("RSA-OAEP-256", "A128GCM"),
        ("RSA-OAEP-256", "A256CBC-HS512"),
    ],
)
def test_other_algorithms_made_by_jwcrypto_are_refused(alg: str, enc: str) -> None:
    header = {"alg": alg, "enc": enc, "kid": transport_key().kid}
    with pytest.raises(EnvelopeAlgorithm) as info:
        open_now(jwcrypto_token(payload(), header))
    assert info.value.code == "envelope_algorithm"


def _with_header(token: str, header: dict[str, Any]) -> str:
    parts = token.split(".")
    parts[0] = b64url(json.dumps(header).encode())
    return ".".join(parts)


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "dir", "enc": "A256GCM"},
        {"alg": "none", "enc": "A256GCM"},
        {"alg": "A256KW", "enc": "A256GCM"},
        {"alg": "ECDH-ES", "enc": "A256GCM"},
        {"alg": "RSA-OAEP-256"},
        {"enc": "A256GCM"},
        {"alg": "RSA-OAEP-256", "enc": "A256GCM", "zip": "DEF"},
    ],
)
def test_forged_headers_are_refused_before_decryption(header: dict[str, Any]) -> None:
    token = _with_header(jwcrypto_token(payload()), {**header, "kid": transport_key().kid})
    with pytest.raises(EnvelopeAlgorithm):
        open_now(token)


def test_compressed_request_from_jwcrypto_is_refused() -> None:
    header = {"alg": "RSA-OAEP-256", "enc": "A256GCM", "zip": "DEF", "kid": transport_key().kid}
    with pytest.raises(EnvelopeAlgorithm, match="zip"):
        open_now(jwcrypto_token(payload(), header))


@pytest.mark.parametrize(
    "extra", [{"crit": ["exp"]}, {"jku": "https://evil.example/jwks"}, {"x5u": "x"}]
)
def test_unexpected_header_parameters_are_refused(extra: dict[str, Any]) -> None:
    header = {"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": transport_key().kid, **extra}
    with pytest.raises(EnvelopeMalformed, match="header"):
        open_now(_with_header(jwcrypto_token(payload()), header))


def test_unknown_kid_is_refused_with_a_remedy() -> None:
    sealed = seal_request(other_key().public_jwk(), CLAIMS, now=NOW)
    with pytest.raises(EnvelopeUnknownKid) as info:
        open_now(sealed.token)
    assert info.value.code == "envelope_unknown_kid"
    assert info.value.remedy is not None
    assert "jwks" in info.value.remedy


def test_missing_kid_is_refused() -> None:
    header = {"alg": "RSA-OAEP-256", "enc": "A256GCM"}
    with pytest.raises(EnvelopeUnknownKid):
        open_now(jwcrypto_token(payload(), header))


def test_token_sealed_to_another_key_under_our_kid_is_broken() -> None:
    header = {"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": transport_key().kid}
    token = jwcrypto_token(payload(), header, key=other_key())
    with pytest.raises(EnvelopeBroken) as info:
        open_now(token)
    assert isinstance(info.value, AuthenticationFailed)


@pytest.mark.parametrize("part", [1, 2, 3, 4])
def test_tampered_token_is_broken(part: int) -> None:
    parts = seal_request(transport_key().public_jwk(), CLAIMS, now=NOW).token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(parts[part] + "=" * (-len(parts[part]) % 4)))
    raw[len(raw) // 2] ^= 0x01
    parts[part] = b64url(bytes(raw))
    with pytest.raises(EnvelopeBroken):
        open_now(".".join(parts))


def test_changed_protected_header_breaks_the_tag() -> None:
    token = seal_request(transport_key().public_jwk(), CLAIMS, now=NOW).token
    header = {"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": transport_key().kid, "typ": "JWE"}
    with pytest.raises(EnvelopeBroken):
        open_now(_with_header(token, header))


def test_expired_request_is_refused() -> None:
    sealed = seal_request(transport_key().public_jwk(), CLAIMS, ttl_seconds=60, now=NOW - 61)
    with pytest.raises(EnvelopeExpired) as info:
        open_now(sealed.token)
    assert info.value.code == "envelope_expired"


def test_leeway_tolerates_small_clock_skew() -> None:
    sealed = seal_request(transport_key().public_jwk(), CLAIMS, ttl_seconds=60, now=NOW - 62)
    assert open_now(sealed.token, leeway_seconds=5).claims == CLAIMS


def test_exp_too_far_ahead_is_refused() -> None:
    with pytest.raises(EnvelopeLifetime):
        open_now(jwcrypto_token(payload(exp=int(NOW) + MAX_LIFETIME_SECONDS + 1)))
    assert open_now(jwcrypto_token(payload(exp=int(NOW) + MAX_LIFETIME_SECONDS))).exp > NOW


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"exp": None}, "exp"),
        ({"exp": "1800000060"}, "exp"),
        ({"exp": True}, "exp"),
        ({"jti": None}, "jti"),
        ({"jti": "short"}, "jti"),
        ({"jti": 12345678901234567890}, "jti"),
        ({"rk": None}, "rk"),
        ({"rk": b64url(bytes(16))}, "rk"),
        ({"rk": "!!!"}, "rk"),
    ],
)
def test_missing_or_invalid_reserved_claims_are_refused(
    overrides: dict[str, Any], field: str
) -> None:
    with pytest.raises(EnvelopeMalformed, match=field) as info:
        open_now(jwcrypto_token(payload(**overrides)))
    assert info.value.code == "envelope_malformed"


@pytest.mark.parametrize(
    "plaintext", [b"not json", b"[1, 2]", b'{"a": 1, "a": 2}', b'{"exp": NaN}']
)
def test_payload_that_is_not_a_strict_json_object_is_refused(plaintext: bytes) -> None:
    with pytest.raises(EnvelopeMalformed, match="payload"):
        open_now(jwcrypto_token(plaintext))


def test_payload_nested_10000_deep_is_a_400_naming_the_limit() -> None:
    deep = b"[" * 10_000 + b"]" * 10_000
    plaintext = json.dumps(payload()).encode()[:-1] + b', "identifier": ' + deep + b"}"
    with pytest.raises(JsonTooDeep, match="payload is nested more than 32 levels") as info:
        open_now(jwcrypto_token(plaintext))
    assert status_of(info.value) == 400
    with pytest.raises(JsonTooDeep, match="more than 3 levels"):
        open_now(jwcrypto_token(payload(a={"b": [[1]]})), max_depth=3)
    assert open_now(jwcrypto_token(payload(a={"b": [1]})), max_depth=3).claims["a"] == {"b": [1]}


def test_header_nested_deeper_than_a_jose_header_is_refused_before_any_key() -> None:
    header = b'{"alg": "RSA-OAEP-256", "x": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    with pytest.raises(JsonTooDeep, match="header is nested more than 2 levels"):
        open_now(b64url(header) + ".a.b.c.d")


def test_payload_with_a_huge_number_is_a_400() -> None:
    plaintext = json.dumps(payload()).encode()[:-1] + b', "n": 1e999}'
    with pytest.raises(JsonNumberRefused):
        open_now(jwcrypto_token(plaintext))


@pytest.mark.parametrize(
    "token",
    [
        "",
        "a.b.c.d",
        "a.b.c.d.e.f",
        "!!!.a.b.c.d",
        b64url(b"[]") + ".a.b.c.d",
        b64url(b"{") + ".a.b.c.d",
    ],
)
def test_malformed_compact_tokens_are_refused(token: str) -> None:
    with pytest.raises(EnvelopeMalformed):
        open_now(token)


def test_oversized_token_is_refused_before_anything_else() -> None:
    token = seal_request(transport_key().public_jwk(), {"blob": "x" * 2000}, now=NOW).token
    with pytest.raises(EnvelopeTooLarge) as info:
        open_now(token, max_bytes=1024)
    assert info.value.code == "envelope_too_large"
    assert status_of(info.value) == 413
    with pytest.raises(EnvelopeTooLarge):
        open_now("x" * 70_000)


def test_large_token_within_a_raised_limit_opens() -> None:
    token = seal_request(transport_key().public_jwk(), {"blob": "x" * 70_000}, now=NOW).token
    assert open_now(token, max_bytes=200_000).claims["blob"] == "x" * 70_000


# --- seal_request argument checks -----------------------------------------------------------


@pytest.mark.parametrize("name", ["jti", "iat", "exp", "rk"])
def test_reserved_claim_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput):
        seal_request(transport_key().public_jwk(), {name: 1}, now=NOW)


@pytest.mark.parametrize("ttl", [0, -1, MAX_LIFETIME_SECONDS + 1])
def test_ttl_out_of_range_is_refused(ttl: int) -> None:
    with pytest.raises(InvalidInput):
        seal_request(transport_key().public_jwk(), CLAIMS, ttl_seconds=ttl, now=NOW)


def test_a_transport_key_for_another_algorithm_or_too_small_is_refused() -> None:
    jwk = transport_key().public_jwk()
    with pytest.raises(EnvelopeAlgorithm):
        seal_request({**jwk, "alg": "RSA1_5"}, CLAIMS, now=NOW)
    with pytest.raises(EnvelopeAlgorithm):
        seal_request({**jwk, "use": "sig"}, CLAIMS, now=NOW)
    small = jwcrypto_jwk.JWK.generate(kty="RSA", size=2048)
    with pytest.raises(EnvelopeAlgorithm):
        seal_request(small.export_public(as_dict=True), CLAIMS, now=NOW)


def test_claims_that_are_not_json_are_refused() -> None:
    with pytest.raises(InvalidInput):
        seal_request(transport_key().public_jwk(), {"x": b"bytes"}, now=NOW)


# --- responses ------------------------------------------------------------------------------

RK = bytes(range(32))


def test_response_round_trips_under_the_response_key() -> None:
    sealed = seal_request(transport_key().public_jwk(), CLAIMS, now=NOW)
    opened = open_now(sealed.token)
    token = seal_response(opened.response_key, {"sk": "c2Vzc2lvbg", "ok": True})
    assert open_response(sealed.response_key, token) == {"sk": "c2Vzc2lvbg", "ok": True}


def test_response_decrypts_with_jwcrypto_and_has_dir_a256gcm_header() -> None:
    token = seal_response(RK, {"ok": True})
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {"alg": "dir", "enc": "A256GCM"}
    parsed = jwcrypto_jwe.JWE()
    parsed.deserialize(token, key=jwcrypto_jwk.JWK(kty="oct", k=b64url(RK)))
    assert json.loads(parsed.payload) == {"ok": True}


def _jwcrypto_response(header: dict[str, Any], body: bytes = b'{"ok": true}') -> str:
    token = jwcrypto_jwe.JWE(
        body, protected=json.dumps(header), algs=[header["alg"], header["enc"]]
    )
    token.add_recipient(jwcrypto_jwk.JWK(kty="oct", k=b64url(RK)))
    return str(token.serialize(compact=True))


def test_response_from_jwcrypto_opens() -> None:
    assert open_response(RK, _jwcrypto_response({"alg": "dir", "enc": "A256GCM"})) == {"ok": True}


@pytest.mark.parametrize(
    "header",
    [{"alg": "A256KW", "enc": "A256GCM"}, {"alg": "dir", "enc": "A256GCM", "zip": "DEF"}],
)
def test_response_with_other_algorithms_is_refused(header: dict[str, Any]) -> None:
    with pytest.raises(EnvelopeAlgorithm):
        open_response(RK, _jwcrypto_response(header))


def test_request_token_is_not_accepted_as_a_response() -> None:
    token = seal_request(transport_key().public_jwk(), CLAIMS, now=NOW).token
    with pytest.raises(EnvelopeAlgorithm):
        open_response(RK, token)


def test_response_under_another_key_is_broken() -> None:
    with pytest.raises(EnvelopeBroken):
        open_response(bytes(32), seal_response(RK, {"ok": True}))


def test_response_key_must_be_32_bytes() -> None:
    with pytest.raises(InvalidInput):
        seal_response(bytes(16), {"ok": True})
