"""What the reference authenticator says about a request (issue 21): a reset says so, and a
request answered elsewhere says that."""

from __future__ import annotations

from cardvault.clients.authenticator.core import closed_note, describe
from cardvault.clients.common.replies import Reply

CHALLENGE = {
    "id": "c1",
    "created_at": "2026-12-07T12:00:00+00:00",
    "client_name": "WARD-PC-12",
    "client_address": "10.1.2.3",
    "organisation_name": "Demo Hospital",
}


def test_a_reset_request_asks_to_reset_the_passcode() -> None:
    text = describe(Reply({**CHALLENGE, "request": "passcode_reset"}))
    assert text.startswith("Reset your passcode: request for Demo Hospital from WARD-PC-12")


def test_a_sign_in_request_says_sign_in_also_from_an_older_service() -> None:
    assert describe(Reply({**CHALLENGE, "request": "sign_in"})).startswith("Sign-in request for")
    assert describe(Reply(CHALLENGE)).startswith("Sign-in request for")


def test_a_request_answered_elsewhere_says_so() -> None:
    event = {"challenge_id": "c1", "status": "cancelled", "answered_elsewhere": True}
    assert closed_note(Reply(event)) == "Request c1 was answered on another device."
    assert closed_note(Reply({"challenge_id": "c1", "status": "expired"})) == (
        "Request c1 closed (expired)."
    )
