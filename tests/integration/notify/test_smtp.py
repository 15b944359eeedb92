"""SmtpSender against a real SMTP server (aiosmtpd) on 127.0.0.1: plain, STARTTLS+AUTH, TLS."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from tests.support.live_server import free_port
from tests.support.notify_servers import SMTP_PASSWORD, SMTP_USER, SmtpServer, Tls

from cardvault.notify.message import EmailMessage
from cardvault.notify.ports import DeliveryFailed, SenderMisconfigured
from cardvault.notify.smtp import SmtpSecurity, SmtpSender
from cardvault.notify.templates import render_email

FROM = "cardvault <no-reply@example.org>"
FIXED_NOW = datetime(2024, 1, 31, 14, 5, tzinfo=UTC)


def _message(**overrides: Any) -> EmailMessage:
    fields = {
        "message_id": "0b7c1f3e-1d2a-4c55-9a1e-5f6d7c8b9a01",
        "to": "ann.holder@example.org",
        "subject": "Your card has been locked",
        "text": "Hello Ann,\n\nOpen https://portal.example/unlock?t=abc to unlock.\n",
        "html": '<p>Hello Ann,</p><p><a href="https://portal.example/unlock?t=abc">Unlock</a></p>',
    }
    return EmailMessage(**{**fields, **overrides})


def _sender(
    port: int,
    security: SmtpSecurity = "none",
    tls: Tls | None = None,
    credentials: tuple[str, str] | None = None,
) -> SmtpSender:
    username, password = credentials or (None, None)
    return SmtpSender(
        host="127.0.0.1",
        port=port,
        security=security,
        from_address=FROM,
        username=username,
        password=password,
        timeout=5,
        ssl_context=tls.client_context() if tls else None,
        clock=lambda: FIXED_NOW,
    )


def test_send_plain_delivers_multipart_alternative_with_stable_headers(
    smtp_server: SmtpServer,
) -> None:
    _sender(smtp_server.port).send(_message())

    [received] = smtp_server.mailbox.received
    mime = received.message
    assert received.mail_from == "no-reply@example.org"
    assert received.rcpt_tos == ["ann.holder@example.org"]
    assert mime["Message-ID"] == "<0b7c1f3e-1d2a-4c55-9a1e-5f6d7c8b9a01@example.org>"
    assert mime["From"] == FROM
    assert mime["To"] == "ann.holder@example.org"
    assert mime["Subject"] == "Your card has been locked"
    assert mime["Date"].datetime == FIXED_NOW
    assert mime["Auto-Submitted"] == "auto-generated"
    assert mime.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in mime.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert "https://portal.example/unlock?t=abc" in mime.get_body(("plain",)).get_content()
    assert 'href="https://portal.example/unlock?t=abc"' in mime.get_body(("html",)).get_content()


def test_send_text_only_message_is_a_single_text_part(smtp_server: SmtpServer) -> None:
    _sender(smtp_server.port).send(_message(html=None))

    [received] = smtp_server.mailbox.received
    assert received.message.get_content_type() == "text/plain"


def test_send_twice_keeps_the_same_message_id(smtp_server: SmtpServer) -> None:
    sender = _sender(smtp_server.port)
    sender.send(_message())
    sender.send(_message())

    ids = {received.message["Message-ID"] for received in smtp_server.mailbox.received}
    assert ids == {"<0b7c1f3e-1d2a-4c55-9a1e-5f6d7c8b9a01@example.org>"}


def test_send_non_ascii_names_survive_encoding(smtp_server: SmtpServer) -> None:
    _sender(smtp_server.port).send(
        _message(subject="Siân, your card is locked", text="Helô Siân\n", html="<p>Siân</p>")
    )

    mime = smtp_server.mailbox.received[0].message
    assert mime["Subject"] == "Siân, your card is locked"
    assert mime.get_body(("plain",)).get_content().splitlines() == ["Helô Siân"]


@pytest.mark.parametrize("smtp_server", ["starttls"], indirect=True)
def test_send_starttls_with_auth_delivers_over_tls(smtp_server: SmtpServer, tls: Tls) -> None:
    sender = _sender(smtp_server.port, "starttls", tls, (SMTP_USER, SMTP_PASSWORD))

    sender.send(_message())

    [received] = smtp_server.mailbox.received
    assert received.tls
    assert received.authenticated


@pytest.mark.parametrize("smtp_server", ["starttls"], indirect=True)
def test_send_wrong_password_is_a_temporary_failure(smtp_server: SmtpServer, tls: Tls) -> None:
    sender = _sender(smtp_server.port, "starttls", tls, (SMTP_USER, "wrong"))

    with pytest.raises(DeliveryFailed) as failed:
        sender.send(_message())

    assert not failed.value.permanent
    assert "credentials" in failed.value.message
    assert smtp_server.mailbox.received == []


@pytest.mark.parametrize("smtp_server", ["starttls"], indirect=True)
def test_send_starttls_with_untrusted_certificate_fails_temporarily(
    smtp_server: SmtpServer,
) -> None:
    sender = SmtpSender(
        host="127.0.0.1",
        port=smtp_server.port,
        security="starttls",
        from_address=FROM,
        username=SMTP_USER,
        password=SMTP_PASSWORD,
        timeout=5,
    )  # the system trust store does not know the test CA

    with pytest.raises(DeliveryFailed) as failed:
        sender.send(_message())

    assert not failed.value.permanent
    assert smtp_server.mailbox.received == []


def test_send_starttls_never_falls_back_to_plain_text(smtp_server: SmtpServer, tls: Tls) -> None:
    sender = _sender(smtp_server.port, "starttls", tls)  # this server offers no STARTTLS

    with pytest.raises(DeliveryFailed) as failed:
        sender.send(_message())

    assert not failed.value.permanent
    assert smtp_server.mailbox.received == []


@pytest.mark.parametrize("smtp_server", ["tls"], indirect=True)
def test_send_implicit_tls_delivers(smtp_server: SmtpServer, tls: Tls) -> None:
    _sender(smtp_server.port, "tls", tls).send(_message())

    assert len(smtp_server.mailbox.received) == 1


def test_send_rejected_recipient_5xx_is_permanent(smtp_server: SmtpServer) -> None:
    smtp_server.mailbox.refuse_rcpt["gone@example.org"] = "550 5.1.1 No such user"

    with pytest.raises(DeliveryFailed) as failed:
        _sender(smtp_server.port).send(_message(to="gone@example.org"))

    assert failed.value.permanent
    assert failed.value.smtp_code == 550
    assert failed.value.as_dict()["permanent"] is True


def test_send_deferred_recipient_4xx_is_temporary(smtp_server: SmtpServer) -> None:
    smtp_server.mailbox.refuse_rcpt["busy@example.org"] = "451 4.3.0 Try again later"

    with pytest.raises(DeliveryFailed) as failed:
        _sender(smtp_server.port).send(_message(to="busy@example.org"))

    assert not failed.value.permanent
    assert failed.value.smtp_code == 451


def test_send_rejected_content_5xx_is_permanent(smtp_server: SmtpServer) -> None:
    smtp_server.mailbox.refuse_data = "554 5.6.0 Message refused"

    with pytest.raises(DeliveryFailed) as failed:
        _sender(smtp_server.port).send(_message())

    assert failed.value.permanent


def test_send_connection_refused_is_temporary() -> None:
    with pytest.raises(DeliveryFailed) as failed:
        _sender(free_port()).send(_message())

    assert not failed.value.permanent
    assert failed.value.code == "delivery_failed"


def test_rendered_template_arrives_with_link_in_both_parts(smtp_server: SmtpServer) -> None:
    link = "https://portal.example/recover?t=Zm9v"
    message = render_email(
        "reset_requested",
        to="ann.holder@example.org",
        message_id="reset-1",
        context={
            "holder_name": "Ann",
            "link": link,
            "valid_minutes": 30,
            "support_contact": "the service desk",
        },
    )

    _sender(smtp_server.port).send(message)

    mime = smtp_server.mailbox.received[0].message
    assert link in mime.get_body(("plain",)).get_content()
    assert f'href="{link}"' in mime.get_body(("html",)).get_content()


def test_credentials_over_unencrypted_connection_are_refused() -> None:
    with pytest.raises(SenderMisconfigured):
        _sender(25, "none", credentials=(SMTP_USER, SMTP_PASSWORD))


@pytest.mark.parametrize(
    "from_address", ["no address", "cardvault <no-reply@example.org>\r\nBcc: x@example.org"]
)
def test_malformed_sender_address_is_refused(from_address: str) -> None:
    with pytest.raises(SenderMisconfigured):
        SmtpSender(host="127.0.0.1", port=25, security="none", from_address=from_address)
