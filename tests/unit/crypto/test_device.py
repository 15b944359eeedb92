"""The device protocol's signatures and sealed box, checked against an independent verifier."""

from __future__ import annotations

import base64
import hashlib

import pytest
from jwcrypto import jwe as jwcrypto_jwe
from jwcrypto import jwk as jwcrypto_jwk

from cardvault.crypto import device as d
from cardvault.errors import InvalidInput


def test_request_signing_input_is_the_documented_text() -> None:
    body = b'{"a":1}'
    text = d.request_signing_input(
        method="post", path="/api/v1/device/x?y=1", timestamp=1700000000, nonce="n" * 16, body=body
    ).decode()
    digest = d.b64url(hashlib.sha256(body).digest())
    assert text == (
        f"cardvault-device-request/v1\nPOST\n/api/v1/device/x?y=1\n1700000000\n{'n' * 16}\n{digest}"
    )


def test_signature_binds_challenge_number_and_decision() -> None:
    key = d.DeviceKey.generate()
    message = d.answer_signing_input(challenge_id="c1", number="42", decision="approve")
    signature = key.sign(message)
    d.verify_device_signature(key.public_der(), message, signature)
    for other in (
        d.answer_signing_input(challenge_id="c1", number="43", decision="approve"),
        d.answer_signing_input(challenge_id="c2", number="42", decision="approve"),
        d.answer_signing_input(challenge_id="c1", number="42", decision="deny"),
    ):
        with pytest.raises(d.BadDeviceSignature):
            d.verify_device_signature(key.public_der(), other, signature)


def test_only_p256_device_keys_are_accepted() -> None:
    with pytest.raises(InvalidInput):
        d.check_public_key(b"not a key")
    rsa = jwcrypto_jwk.JWK.generate(kty="RSA", size=2048)
    der = (
        rsa.export_to_pem()
        .replace(b"-----BEGIN PUBLIC KEY-----", b"")
        .replace(b"-----END PUBLIC KEY-----", b"")
    )
    with pytest.raises(InvalidInput):
        d.check_public_key(base64.b64decode(der))


def test_sealed_box_opens_with_an_independent_jose_implementation() -> None:
    pc = jwcrypto_jwk.JWK.generate(kty="EC", crv="P-256")
    token = d.seal_box(pc.export_public(as_dict=True), {"token": "t", "session_key": "k"})
    opened = jwcrypto_jwe.JWE()
    opened.deserialize(token, key=pc)
    assert opened.payload == b'{"token":"t","session_key":"k"}'
    ours = d.new_box_key()
    assert d.open_box(ours, d.seal_box(ours.public_jwk(), {"x": 1})) == {"x": 1}
