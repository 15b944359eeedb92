"""Sending SMS through GOV.UK Notify, the UK public sector's notification service.

Notify sends only texts of templates defined in its web interface, so the operator creates
one SMS template whose whole content is ``((text))``; cardvault renders the text itself
and passes it as that placeholder. Requests are authenticated with a short-lived HS256
JWT (``iss`` = service id, ``iat`` = now) signed with the secret half of the API key.

Notify has no idempotency key. To keep a retry from sending a text twice, every send
first asks Notify for a notification whose ``reference`` is the message id, and sends only
if there is none. (Two dispatchers racing on one message could still both send; the
outbox's row lock is what prevents that race.)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from cardvault import __version__
from cardvault.notify.message import SmsMessage
from cardvault.notify.ports import DeliveryFailed, SenderMisconfigured
from cardvault.notify.sms_webhook import HttpSmsSender, check_gateway_status, check_gateway_url

NOTIFY_BASE_URL = "https://api.notifications.service.gov.uk"
#: the placeholder the operator's Notify template consists of
TEXT_PLACEHOLDER = "text"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def notify_jwt(service_id: str, secret: str, issued_at: int) -> str:
    """The bearer token Notify expects: a JWS (RFC 7515) over ``{iss, iat}`` with HS256."""
    header = _b64url(json.dumps({"typ": "JWT", "alg": "HS256"}).encode())
    claims = _b64url(json.dumps({"iss": service_id, "iat": issued_at}).encode())
    signing_input = f"{header}.{claims}".encode("ascii")
    signature = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{claims}.{_b64url(signature)}"


def _split_api_key(api_key: str) -> tuple[str, str]:
    """A Notify API key is ``<name>-<service id>-<secret>``, both ids being UUIDs."""
    service_id, secret = api_key[-73:-37], api_key[-36:]
    try:
        uuid.UUID(service_id), uuid.UUID(secret)
    except ValueError:
        raise SenderMisconfigured(
            "That is not a GOV.UK Notify API key.",
            remedy="Copy the whole key from Notify's 'API integration' page.",
        ) from None
    return service_id, secret


class GovUkNotifySmsSender(HttpSmsSender):
    """An :class:`~cardvault.notify.ports.SmsSender` for GOV.UK Notify."""

    def __init__(
        self,
        *,
        api_key: str,
        template_id: str,
        base_url: str = NOTIFY_BASE_URL,
        timeout: float = 10.0,
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._service_id, self._secret = _split_api_key(api_key)
        try:
            self._template_id = str(uuid.UUID(template_id))
        except ValueError:
            raise SenderMisconfigured("The Notify template id is not a UUID.") from None
        self._base = str(check_gateway_url(base_url)).rstrip("/")
        self._timeout = timeout
        self._clock = clock
        super().__init__(client)

    def send(self, message: SmsMessage) -> None:
        if self._already_sent(message.message_id):
            return
        body = {
            "phone_number": message.to,
            "template_id": self._template_id,
            "personalisation": {TEXT_PLACEHOLDER: message.text},
            "reference": message.message_id,
        }
        response = self._request("POST", "/v2/notifications/sms", json=body)
        check_gateway_status(response.status_code)

    def _already_sent(self, message_id: str) -> bool:
        params = {"template_type": "sms", "reference": message_id}
        response = self._request("GET", "/v2/notifications", params=params)
        check_gateway_status(response.status_code)
        try:
            return bool(response.json()["notifications"])
        except (ValueError, KeyError, TypeError) as exc:
            raise DeliveryFailed("GOV.UK Notify answered nonsense.", permanent=False) from exc

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        token = notify_jwt(self._service_id, self._secret, int(self._clock()))
        headers = {"Authorization": f"Bearer {token}", "User-Agent": f"cardvault/{__version__}"}
        try:
            return self._client.request(
                method,
                f"{self._base}{path}",
                headers=headers,
                timeout=self._timeout,
                follow_redirects=False,
                **kwargs,
            )
        except httpx.TimeoutException as exc:
            raise DeliveryFailed("GOV.UK Notify did not answer in time.", permanent=False) from exc
        except httpx.HTTPError as exc:
            raise DeliveryFailed("Could not reach GOV.UK Notify.", permanent=False) from exc
