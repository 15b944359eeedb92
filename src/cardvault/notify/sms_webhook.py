"""Sending SMS through a gateway that implements cardvault's JSON webhook.

The contract is in ``docs/protocols/sms-webhook.md``: one POST per message, a bearer token,
and the ``message_id`` as ``Idempotency-Key`` so that a retry after a lost answer does not
send the text twice. Any gateway (or a small adapter in front of one) can implement it.
"""

from __future__ import annotations

import ipaddress
from http import HTTPStatus
from types import TracebackType
from typing import Self

import httpx

from cardvault import __version__
from cardvault.notify.message import SmsMessage
from cardvault.notify.ports import DeliveryFailed, SenderMisconfigured

#: 4xx answers that are about timing or our credentials, not about the message
_RETRYABLE_CLIENT_ERRORS = frozenset(
    {
        HTTPStatus.UNAUTHORIZED,
        HTTPStatus.FORBIDDEN,
        HTTPStatus.REQUEST_TIMEOUT,
        HTTPStatus.CONFLICT,  # the same Idempotency-Key is still being processed
        HTTPStatus.TOO_EARLY,
        HTTPStatus.TOO_MANY_REQUESTS,
    }
)


def check_gateway_url(url: str) -> httpx.URL:
    """HTTPS, or plain HTTP to this machine only: the request carries a bearer token."""
    parsed = httpx.URL(url)
    if parsed.scheme == "https" and parsed.host:
        return parsed
    if parsed.scheme == "http" and _is_loopback(parsed.host):
        return parsed
    raise SenderMisconfigured(
        "The SMS gateway URL must use https (plain http only to localhost).",
        remedy="Set the URL to the gateway's https address.",
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HttpSmsSender:
    """What the HTTP gateways share: an httpx client, closed with the sender if it made it."""

    def __init__(self, client: httpx.Client | None) -> None:
        self._owns_client = client is None
        self._client = client or httpx.Client(follow_redirects=False)

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class WebhookSmsSender(HttpSmsSender):
    """An :class:`~cardvault.notify.ports.SmsSender` that POSTs JSON to a gateway."""

    def __init__(
        self,
        *,
        url: str,
        token: str,
        timeout: float = 10.0,
        client: httpx.Client | None = None,
    ) -> None:
        if not token or any(ch in token for ch in "\r\n"):
            raise SenderMisconfigured("The SMS webhook token is empty or not a single line.")
        self._url = check_gateway_url(url)
        self._token = token
        self._timeout = timeout
        super().__init__(client)

    def send(self, message: SmsMessage) -> None:
        try:
            response = self._client.post(
                self._url,
                json={"id": message.message_id, "to": message.to, "text": message.text},
                headers=self._headers(message),
                timeout=self._timeout,
                follow_redirects=False,
            )
        except httpx.TimeoutException as exc:
            raise DeliveryFailed(
                "The SMS gateway did not answer in time.", permanent=False
            ) from exc
        except httpx.HTTPError as exc:
            raise DeliveryFailed("Could not reach the SMS gateway.", permanent=False) from exc
        check_gateway_status(response.status_code)

    def _headers(self, message: SmsMessage) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self._token}",
            "Idempotency-Key": message.message_id,
            "User-Agent": f"cardvault/{__version__}",
            "Accept": "application/json",
        }


def check_gateway_status(status: int) -> None:
    """2xx is delivered; see the webhook contract for what the other codes mean."""
    if 200 <= status < 300:
        return
    if 300 <= status < 400:
        raise DeliveryFailed(
            f"The SMS gateway redirected the request (HTTP {status}).",
            permanent=False,
            remedy="Set the webhook URL to the final address; redirects are not followed.",
            gateway_status=status,
        )
    if 400 <= status < 500 and status not in _RETRYABLE_CLIENT_ERRORS:
        raise DeliveryFailed(
            f"The SMS gateway refused the message (HTTP {status}).",
            permanent=True,
            gateway_status=status,
        )
    remedy = "Check the SMS webhook token." if status in (401, 403) else None
    raise DeliveryFailed(
        f"The SMS gateway could not take the message now (HTTP {status}).",
        permanent=False,
        remedy=remedy,
        gateway_status=status,
    )
