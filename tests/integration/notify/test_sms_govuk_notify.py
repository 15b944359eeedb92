"""GovUkNotifySmsSender against a local HTTP server that behaves like GOV.UK Notify's v2 API.

The JWT the sender makes is checked by an independent JOSE implementation (jwcrypto).
"""

from __future__ import annotations

import http.server
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from jwcrypto import jwk, jws

from cardvault.notify.message import SmsMessage
from cardvault.notify.ports import DeliveryFailed, SenderMisconfigured
from cardvault.notify.sms_govuk_notify import GovUkNotifySmsSender, notify_jwt

SERVICE_ID = "26785a09-ab16-4eb0-8407-a37497a57506"
SECRET = "3d844edf-8d35-48ac-975b-e847b4f122b0"
API_KEY = f"cardvault_live-{SERVICE_ID}-{SECRET}"
TEMPLATE_ID = "f33517ff-2a88-4f6e-b855-c550268ce08a"


class _FakeNotify(http.server.ThreadingHTTPServer):
    """Notify's two endpoints that the sender uses, with its authentication rules."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _NotifyHandler)
        self.sent: list[dict[str, Any]] = []
        self.post_statuses: list[int] = []  # answers to the next POSTs, then 201
        self.lookups = 0

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class _NotifyHandler(http.server.BaseHTTPRequestHandler):
    server: _FakeNotify

    def do_GET(self) -> None:
        if not self._authenticated():
            return self._answer(403, {"errors": [{"error": "AuthError"}]})
        self.server.lookups += 1
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        reference = query["reference"][0]
        found = [n for n in self.server.sent if n["reference"] == reference]
        return self._answer(200, {"notifications": found, "links": {}})

    def do_POST(self) -> None:
        if not self._authenticated():
            return self._answer(403, {"errors": [{"error": "AuthError"}]})
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        status = self.server.post_statuses.pop(0) if self.server.post_statuses else 201
        if status == 201:
            self.server.sent.append(body)
        return self._answer(status, {"id": "740e5834-3a29-46b4-9a6f-16142fde533a"})

    def _authenticated(self) -> bool:
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        try:
            verified = jws.JWS()
            verified.deserialize(token)
            verified.verify(jwk.JWK(kty="oct", k=jwk.base64url_encode(SECRET)), alg="HS256")
        except (jws.InvalidJWSObject, jws.InvalidJWSSignature, ValueError):
            return False
        claims = json.loads(verified.payload)
        return (
            scheme == "Bearer"
            and claims["iss"] == SERVICE_ID
            and abs(claims["iat"] - time.time()) < 30
        )

    def _answer(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def notify() -> Iterator[tuple[str, _FakeNotify]]:
    server = _FakeNotify()
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _sms() -> SmsMessage:
    return SmsMessage(message_id="invite-9-code", to="07700 900123", text="482915 is your code.")


def _sender(base_url: str, api_key: str = API_KEY) -> GovUkNotifySmsSender:
    return GovUkNotifySmsSender(
        api_key=api_key, template_id=TEMPLATE_ID, base_url=base_url, timeout=2
    )


def test_send_posts_the_text_as_personalisation_with_reference(
    notify: tuple[str, _FakeNotify],
) -> None:
    url, server = notify
    with _sender(url) as sender:
        sender.send(_sms())

    assert server.sent == [
        {
            "phone_number": "+447700900123",
            "template_id": TEMPLATE_ID,
            "personalisation": {"text": "482915 is your code."},
            "reference": "invite-9-code",
        }
    ]


def test_send_again_after_a_lost_answer_does_not_send_twice(
    notify: tuple[str, _FakeNotify],
) -> None:
    url, server = notify
    with _sender(url) as sender:
        sender.send(_sms())
        sender.send(_sms())  # the dispatcher never heard the first answer

    assert len(server.sent) == 1
    assert server.lookups == 2


def test_send_with_a_wrong_secret_is_a_temporary_failure(
    notify: tuple[str, _FakeNotify],
) -> None:
    url, server = notify
    wrong = f"cardvault_live-{SERVICE_ID}-00000000-0000-4000-8000-000000000000"
    with _sender(url, wrong) as sender, pytest.raises(DeliveryFailed) as failed:
        sender.send(_sms())

    assert not failed.value.permanent
    assert server.sent == []


@pytest.mark.parametrize(("status", "permanent"), [(400, True), (429, False), (500, False)])
def test_send_maps_notify_errors(
    notify: tuple[str, _FakeNotify], status: int, permanent: bool
) -> None:
    url, server = notify
    server.post_statuses = [status]
    with _sender(url) as sender, pytest.raises(DeliveryFailed) as failed:
        sender.send(_sms())

    assert failed.value.permanent is permanent


def test_jwt_verifies_with_an_independent_implementation() -> None:
    token = notify_jwt(SERVICE_ID, SECRET, 1_700_000_000)

    verified = jws.JWS()
    verified.deserialize(token)
    verified.verify(jwk.JWK(kty="oct", k=jwk.base64url_encode(SECRET)), alg="HS256")
    assert json.loads(verified.payload) == {"iss": SERVICE_ID, "iat": 1_700_000_000}
    assert verified.jose_header == {"typ": "JWT", "alg": "HS256"}


@pytest.mark.parametrize("api_key", ["", "not-a-key", SECRET])
def test_malformed_api_key_is_refused(api_key: str) -> None:
    with pytest.raises(SenderMisconfigured):
        GovUkNotifySmsSender(api_key=api_key, template_id=TEMPLATE_ID)


def test_template_id_must_be_a_uuid() -> None:
    with pytest.raises(SenderMisconfigured):
        GovUkNotifySmsSender(api_key=API_KEY, template_id="invitation")
