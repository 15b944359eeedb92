"""One full authentication as the benchmark sends it, and what it costs the database.

A sign-in with the TOTP code inline (an opening envelope) and a challenge signature over the
session channel. ``count`` runs them in this process against the benchmark's data directory
(the app without its lifespan, so no housekeeping runs meanwhile) and counts the statements
and transactions of each, as tests/integration/signin/test_statement_budget.py pins them.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable

from fastapi.testclient import TestClient

from _setup import PASSCODE
from cardvault.clients.common.api import CardvaultApi, Reply
from cardvault.config import Settings
from cardvault.services.system.runtime import open_runtime
from cardvault.store.statements import StatementCount, counted
from cardvault.web.app import create_app


def sign_in(api: CardvaultApi, email: str, code: str) -> Reply:
    """Identifier, passcode and the TOTP code in one opening envelope."""
    claims = {
        "identifier": {"kind": "email", "value": email},
        "passcode": PASSCODE,
        "second_factor": {"method": "totp", "code": code},
    }
    return api.sealed_call("/api/v1/auth/login", claims)  # type: ignore[arg-type]


def sign(api: CardvaultApi, login: Reply) -> Reply:
    """A relying party's challenge signed with the authentication key, over the channel."""
    session = login.obj("session")
    api.use_channel(session.optional_text("channel_id"), session.optional_text("channel_key"))
    claims = {
        "token": session.text("token"),
        "session_key": login.text("session_key"),
        "key": "authentication",
        "hash": "sha256",
        "digest": base64.b64encode(hashlib.sha256(os.urandom(16)).digest()).decode(),
    }
    return api.session_call("/api/v1/card/sign", claims)  # type: ignore[arg-type]


def count(
    settings: Settings, take: Callable[[], tuple[str, str]], release: Callable[[str], None]
) -> tuple[StatementCount, StatementCount]:
    """Statements of one sign-in and of one signature (after one of each to warm up)."""
    rt = open_runtime(settings)
    try:
        client = TestClient(create_app(rt), base_url="https://localhost", client=("127.0.0.1", 1))
        api = CardvaultApi(client)
        api.transport_key()
        for _warm_up_then_count in range(2):
            email, code = take()
            try:
                with counted(rt.engine) as signing_in:
                    login = sign_in(api, email, code)
                with counted(rt.engine) as signing:
                    sign(api, login)
            finally:
                release(email)
        return signing_in, signing
    finally:
        rt.close()
