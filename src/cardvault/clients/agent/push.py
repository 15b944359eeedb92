"""The agent's side of the paired phone: push with number matching, the app's one-time
code when the phone is offline, and sign-in by QR code (docs/protocols/device.md §5-6)."""

from __future__ import annotations

import time
from collections.abc import Callable

from cardvault.clients.common.api import CardvaultApi, ServiceError
from cardvault.clients.common.replies import JsonObject, Reply
from cardvault.crypto import device as dcrypto

Prompt = Callable[[str], str]
Show = Callable[[str], None]
WAIT_SECONDS = 25

_REFUSED = {
    "denied": "The sign-in was denied on your phone.",
    "not_me": "You answered \u201cthis wasn't me\u201d on your phone; the sign-in was refused "
    "and your RA has been told.",
    "wrong_number": "The number typed on the phone was not the one shown here; "
    "the sign-in was refused.",
    "expired": "The request on your phone expired before it was answered.",
    "cancelled": "The request on your phone was closed.",
}


def try_push(api: CardvaultApi, txn: str, show_number: Show, note: Show) -> Reply | None:
    """Push to the phone and wait; the session, or None when pushes are paused (use a code)."""
    try:
        return _push(api, txn, show_number)
    except ServiceError as exc:
        if exc.problem not in ("push_rate_limited", "no_paired_device"):
            raise
        note(f"{exc.message} Use the one-time code from the app instead.")
        return None


def _push(api: CardvaultApi, txn: str, show: Show) -> Reply:
    started = api.post("/api/v1/auth/push", {"transaction_id": txn})
    challenge_id = started.text("challenge_id")
    show(started.text("number"))
    deadline = time.monotonic() + 600
    state = "pending"
    while state == "pending" and time.monotonic() < deadline:
        state = api.get(
            f"/api/v1/auth/push/{challenge_id}",
            params={"transaction_id": txn, "wait": str(WAIT_SECONDS)},
        ).text("status")
    if state != "approved":
        raise ServiceError(
            _REFUSED.get(state, f"The push ended as {state}."),
            remedy="Sign in again; if the phone is offline use --totp with the app's code.",
            push_status=state,
        )
    response: JsonObject = {"method": "authenticator", "challenge_id": challenge_id}
    return api.sealed_call("/api/v1/auth/factor", {"transaction_id": txn, "response": response})


def qr_login(
    api: CardvaultApi, *, client_name: str | None, show_qr: Show, timeout: float = 180
) -> Reply:
    """Show a QR code, wait for the phone to approve it, and collect the session."""
    key = dcrypto.new_box_key()
    started = api.post(
        "/api/v1/auth/qr", {"public_key": key.public_jwk(), "client_name": client_name}
    )
    show_qr(started.text("uri"))
    request_id = started.text("request_id")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        polled = api.get(f"/api/v1/auth/qr/{request_id}", params={"wait": str(WAIT_SECONDS)})
        state = polled.text("status")
        if state == "approved" and polled.has("result"):
            return Reply(dcrypto.open_box(key, polled.text("result")))
        if state != "pending":
            raise ServiceError(
                {
                    "denied": "The sign-in was refused on the phone.",
                    "expired": "The QR code expired before it was scanned.",
                }.get(state, f"The sign-in request ended as {state}."),
                remedy="Start the sign-in again.",
            )
    raise ServiceError("Nobody approved the QR code in time.", remedy="Start the sign-in again.")
