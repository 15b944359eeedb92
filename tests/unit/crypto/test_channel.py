"""Opening envelopes with ECDH-ES and the session channel (DESIGN §3.5 revised)."""

from __future__ import annotations

import base64
import json

import pytest

from cardvault.crypto import channel, envelope

NOW = 1_800_000_000.0
CLAIMS = {"passcode": "correct horse battery staple"}


@pytest.fixture(scope="module")
def ec_key() -> envelope.TransportKey:
    return envelope.TransportKey.generate_ecdh()


def test_an_ecdh_es_opening_envelope_round_trips(ec_key: envelope.TransportKey) -> None:
    jwk = ec_key.public_jwk()
    assert jwk["alg"] == "ECDH-ES+A256KW"
    assert "d" not in jwk
    sealed = envelope.seal_request(jwk, CLAIMS, now=NOW)
    header = envelope.compact_header(sealed.token)
    assert header["alg"] == "ECDH-ES+A256KW"
    assert "epk" in header
    opened = envelope.open_request({ec_key.kid: ec_key}, sealed.token, now=NOW)
    assert opened.claims == CLAIMS
    assert bytes(opened.response_key) == bytes(sealed.response_key)


def test_an_ecdh_key_survives_its_pem(ec_key: envelope.TransportKey) -> None:
    again = envelope.TransportKey.from_pem(ec_key.to_pem())
    assert again.kid == ec_key.kid
    assert again.alg == "ECDH-ES+A256KW"


def test_the_alg_must_be_the_one_the_key_is_for(ec_key: envelope.TransportKey) -> None:
    rsa = envelope.TransportKey.generate()
    sealed = envelope.seal_request(rsa.public_jwk(), CLAIMS, now=NOW)
    parts = sealed.token.split(".")
    header = envelope.compact_header(sealed.token) | {"kid": ec_key.kid}
    parts[0] = base64.urlsafe_b64encode(json.dumps(header).encode()).decode().rstrip("=")
    with pytest.raises(envelope.EnvelopeAlgorithm):
        envelope.open_request({ec_key.kid: ec_key}, ".".join(parts), now=NOW)


def test_epk_is_refused_outside_ecdh() -> None:
    rsa = envelope.TransportKey.generate()
    sealed = envelope.seal_request(rsa.public_jwk(), CLAIMS, now=NOW)
    parts = sealed.token.split(".")
    header = envelope.compact_header(sealed.token) | {"epk": {"kty": "EC"}}
    parts[0] = base64.urlsafe_b64encode(json.dumps(header).encode()).decode().rstrip("=")
    with pytest.raises(envelope.EnvelopeMalformed):
        envelope.open_request({rsa.kid: rsa}, ".".join(parts), now=NOW)


def test_a_channel_request_and_its_answer_round_trip() -> None:
    ck = channel.new_channel_key()
    token, jti = channel.seal_channel_request(ck, "session-1", CLAIMS, now=NOW)
    assert channel.is_channel(token) == "session-1"
    opened = channel.open_channel_request(lambda kid: ck, token, now=NOW)
    assert opened.claims == CLAIMS
    assert opened.jti == jti
    answer = channel.seal_channel_response(ck, "session-1", jti, {"ok": True})
    assert channel.open_channel_response(ck, "session-1", jti, answer) == {"ok": True}


def test_an_answer_to_another_request_is_refused() -> None:
    ck = channel.new_channel_key()
    _token, jti = channel.seal_channel_request(ck, "s", CLAIMS, now=NOW)
    _other, other_jti = channel.seal_channel_request(ck, "s", CLAIMS, now=NOW)
    answer = channel.seal_channel_response(ck, "s", other_jti, {"ok": True})
    with pytest.raises(envelope.EnvelopeBroken):
        channel.open_channel_response(ck, "s", jti, answer)


def test_another_channels_key_or_a_changed_byte_does_not_open() -> None:
    ck, other = channel.new_channel_key(), channel.new_channel_key()
    token, _ = channel.seal_channel_request(ck, "s", CLAIMS, now=NOW)
    with pytest.raises(envelope.EnvelopeBroken):
        channel.open_channel_request(lambda kid: other, token, now=NOW)
    parts = token.split(".")
    parts[3] = ("A" if parts[3][0] != "A" else "B") + parts[3][1:]
    with pytest.raises(envelope.EnvelopeBroken):
        channel.open_channel_request(lambda kid: ck, ".".join(parts), now=NOW)


def test_an_opening_envelope_is_not_a_channel(ec_key: envelope.TransportKey) -> None:
    sealed = envelope.seal_request(ec_key.public_jwk(), CLAIMS, now=NOW)
    assert channel.is_channel(sealed.token) is None


def test_channel_lifetime_and_reserved_names() -> None:
    ck = channel.new_channel_key()
    token, _ = channel.seal_channel_request(ck, "s", CLAIMS, now=NOW - 3600)
    with pytest.raises(envelope.EnvelopeExpired):
        channel.open_channel_request(lambda kid: ck, token, now=NOW)
    with pytest.raises(envelope.InvalidInput):
        channel.seal_channel_request(ck, "s", {"jti": "mine"}, now=NOW)
