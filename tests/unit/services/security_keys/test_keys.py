"""What a security key's records are made of: unpadded base64url, an opaque user handle per
card and organisation, a fixed-length lookup key per credential id."""

from __future__ import annotations

import secrets

import pytest

from cardvault.domain.webauthn import MalformedResponse
from cardvault.services.security_keys.keys import b64url, credential_key, unb64url, user_handle


@pytest.mark.parametrize("size", [0, 1, 2, 3, 16, 64, 65])
def test_base64url_round_trips_without_padding(size: int) -> None:
    raw = secrets.token_bytes(size)
    text = b64url(raw)
    assert not set(text) & {"=", "+", "/"}
    assert unb64url(text) == raw


@pytest.mark.parametrize("text", ["a", "abcde", "ab$d"])
def test_unreadable_base64url_is_a_malformed_response(text: str) -> None:
    with pytest.raises(MalformedResponse):
        unb64url(text)


def test_the_user_handle_is_opaque_and_differs_per_organisation() -> None:
    handle = user_handle("card-1", "org-A")
    assert len(handle) == 16
    assert handle == user_handle("card-1", "org-A")
    assert handle != user_handle("card-1", "org-B")
    assert handle != user_handle("card-2", "org-A")
    assert b"card-1" not in handle


def test_the_credential_key_has_one_length_whatever_the_id() -> None:
    keys = {credential_key(secrets.token_bytes(n)) for n in (16, 64, 1023)}
    assert {len(k) for k in keys} == {64}
    assert len(keys) == 3
