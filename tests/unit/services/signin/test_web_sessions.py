"""The form token of a web session: derived from the cookie's token, nothing stored; a form
from another session, or none, is refused."""

from __future__ import annotations

import secrets

from cardvault.services.signin.web_sessions import csrf_ok, csrf_token, token_hash


def test_the_form_token_is_bound_to_its_session() -> None:
    one, other = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    assert csrf_token(one) == csrf_token(one)
    assert csrf_token(one) != csrf_token(other)
    assert len(csrf_token(one)) == 64
    assert one not in csrf_token(one)


def test_only_the_sessions_own_form_token_is_accepted() -> None:
    token = secrets.token_urlsafe(32)
    assert csrf_ok(token, csrf_token(token))
    assert not csrf_ok(token, csrf_token(secrets.token_urlsafe(32)))
    assert not csrf_ok(token, None)
    assert not csrf_ok(token, "")
    assert not csrf_ok(token, csrf_token(token)[:-1])


def test_the_cookie_token_is_stored_as_its_sha256_only() -> None:
    token = secrets.token_urlsafe(32)
    assert len(token_hash(token)) == 64
    assert token_hash(token) != csrf_token(token)
