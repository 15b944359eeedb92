"""WebhookSmsSender against a real local HTTP server speaking the webhook contract."""

from __future__ import annotations

import httpx
import pytest
from tests.support.live_server import free_port
from tests.support.notify_servers import Gateway

from cardvault.notify.message import SmsMessage
from cardvault.notify.ports import DeliveryFailed, SenderMisconfigured
from cardvault.notify.sms_webhook import WebhookSmsSender

TOKEN = "gateway-token-123"


def _sms(message_id: str = "sms-7f3a") -> SmsMessage:
    return SmsMessage(message_id=message_id, to="07700 900123", text="123456 is your code.")


def _sender(url: str, timeout: float = 2.0) -> WebhookSmsSender:
    return WebhookSmsSender(url=url, token=TOKEN, timeout=timeout)


def test_send_posts_the_documented_json_with_token_and_idempotency_key(
    sms_gateway: Gateway,
) -> None:
    with _sender(sms_gateway.url) as sender:
        sender.send(_sms())

    [request] = sms_gateway.server.requests
    assert request.path == "/sms"
    assert request.body == {"id": "sms-7f3a", "to": "+447700900123", "text": "123456 is your code."}
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Idempotency-Key"] == "sms-7f3a"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"].startswith("cardvault/")


def test_resend_after_failure_carries_the_same_idempotency_key(sms_gateway: Gateway) -> None:
    sms_gateway.server.statuses = [503]
    with _sender(sms_gateway.url) as sender:
        with pytest.raises(DeliveryFailed):
            sender.send(_sms())
        sender.send(_sms())

    keys = [r.headers["Idempotency-Key"] for r in sms_gateway.server.requests]
    assert keys == ["sms-7f3a", "sms-7f3a"]


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_send_any_2xx_is_delivered(sms_gateway: Gateway, status: int) -> None:
    sms_gateway.server.statuses = [status]
    with _sender(sms_gateway.url) as sender:
        sender.send(_sms())


@pytest.mark.parametrize("status", [400, 404, 413, 422])
def test_send_refused_message_4xx_is_permanent(sms_gateway: Gateway, status: int) -> None:
    sms_gateway.server.statuses = [status]
    with _sender(sms_gateway.url) as sender, pytest.raises(DeliveryFailed) as failed:
        sender.send(_sms())

    assert failed.value.permanent
    assert failed.value.gateway_status == status


@pytest.mark.parametrize("status", [401, 403, 408, 409, 429])
def test_send_4xx_about_credentials_or_timing_is_temporary(
    sms_gateway: Gateway, status: int
) -> None:
    sms_gateway.server.statuses = [status]
    with _sender(sms_gateway.url) as sender, pytest.raises(DeliveryFailed) as failed:
        sender.send(_sms())

    assert not failed.value.permanent


@pytest.mark.parametrize("status", [500, 502, 503])
def test_send_5xx_is_temporary(sms_gateway: Gateway, status: int) -> None:
    sms_gateway.server.statuses = [status]
    with _sender(sms_gateway.url) as sender, pytest.raises(DeliveryFailed) as failed:
        sender.send(_sms())

    assert not failed.value.permanent


def test_send_redirect_is_not_followed(sms_gateway: Gateway) -> None:
    sms_gateway.server.statuses = [307]
    with _sender(sms_gateway.url) as sender, pytest.raises(DeliveryFailed) as failed:
        sender.send(_sms())

    assert not failed.value.permanent
    assert len(sms_gateway.server.requests) == 1  # the token went nowhere else


def test_send_gateway_too_slow_is_temporary(sms_gateway: Gateway) -> None:
    sms_gateway.server.stall.set()
    with _sender(sms_gateway.url, timeout=0.2) as sender, pytest.raises(DeliveryFailed) as failed:
        sender.send(_sms())

    assert not failed.value.permanent
    assert "in time" in failed.value.message


def test_send_connection_refused_is_temporary() -> None:
    url = f"http://127.0.0.1:{free_port()}/sms"
    with _sender(url) as sender, pytest.raises(DeliveryFailed) as failed:
        sender.send(_sms())

    assert not failed.value.permanent


def test_send_uses_the_given_client(sms_gateway: Gateway) -> None:
    with httpx.Client() as client:
        WebhookSmsSender(url=sms_gateway.url, token=TOKEN, client=client).send(_sms())
        assert not client.is_closed

    assert len(sms_gateway.server.requests) == 1


@pytest.mark.parametrize(
    "url",
    ["http://sms.example.org/send", "ftp://127.0.0.1/sms", "https:///nohost", "not a url"],
)
def test_url_without_tls_to_another_host_is_refused(url: str) -> None:
    with pytest.raises(SenderMisconfigured):
        WebhookSmsSender(url=url, token=TOKEN)


@pytest.mark.parametrize("url", ["https://sms.example.org/send", "http://localhost:8080/sms"])
def test_https_or_loopback_url_is_accepted(url: str) -> None:
    WebhookSmsSender(url=url, token=TOKEN).close()


@pytest.mark.parametrize("token", ["", "abc\r\nX-Evil: 1"])
def test_empty_or_multiline_token_is_refused(token: str) -> None:
    with pytest.raises(SenderMisconfigured):
        WebhookSmsSender(url="https://sms.example.org/send", token=token)
