"""Real servers for the notification tests: an SMTP server (aiosmtpd) and an HTTP server.

Both listen on 127.0.0.1 on a free port and run in a thread of this process, so the
senders talk to them over real sockets, with real TLS, exactly as in production.
"""

from __future__ import annotations

import email
import email.message
import email.policy
import http.server
import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.live_server import free_port
from tests.support.pki import ec_root_ca, name

SMTP_USER = "dispatcher"
SMTP_PASSWORD = "correct horse battery staple"


# ---------------------------------------------------------------- TLS material


@dataclass(frozen=True)
class Tls:
    ca_file: Path
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A throwaway CA and a server certificate for 127.0.0.1 / localhost."""
    directory = tmp_path_factory.mktemp("tls")
    now = datetime.now(UTC)
    ca_key, ca = ec_root_ca("notify test CA", now=now)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(name("localhost"))
        .issuer_name(ca.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    tls = Tls(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    tls.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    tls.cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    tls.key_file.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return tls


# ---------------------------------------------------------------- SMTP server


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: email.message.EmailMessage
    authenticated: bool
    tls: bool


@dataclass
class Mailbox:
    """An aiosmtpd handler that keeps what it receives and refuses on request."""

    received: list[Received] = field(default_factory=list)
    #: recipient → the reply RCPT TO gets instead of 250
    refuse_rcpt: dict[str, str] = field(default_factory=dict)
    #: when set, the reply to DATA instead of 250
    refuse_data: str | None = None

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refuse_rcpt:
            return self.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.refuse_data is not None:
            return self.refuse_data
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        self.received.append(
            Received(
                mail_from=envelope.mail_from,
                rcpt_tos=list(envelope.rcpt_tos),
                message=message,
                authenticated=bool(session.authenticated),
                tls=session.ssl is not None,
            )
        )
        return "250 Message accepted for delivery"


def _authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == SMTP_USER.encode()
        and auth_data.password == SMTP_PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


@dataclass(frozen=True)
class SmtpServer:
    port: int
    mailbox: Mailbox


@pytest.fixture
def smtp_server(request: pytest.FixtureRequest, tls: Tls) -> Iterator[SmtpServer]:
    """An SMTP server; ``@pytest.mark.parametrize("smtp_server", [...], indirect=True)`` picks
    its mode: "plain" (default), "starttls" (STARTTLS and AUTH required) or "tls" (implicit)."""
    mode = getattr(request, "param", "plain")
    mailbox = Mailbox()
    port = free_port()
    options: dict[str, Any] = {}
    if mode == "starttls":
        options = {
            "tls_context": tls.server_context(),
            "require_starttls": True,
            "authenticator": _authenticator,
            "auth_required": True,
        }
    elif mode == "tls":
        options = {"ssl_context": tls.server_context()}
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield SmtpServer(port=port, mailbox=mailbox)
    finally:
        controller.stop()


# ---------------------------------------------------------------- HTTP server


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    body: Any


class _GatewayServer(http.server.ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _GatewayHandler)
        self.requests: list[Request] = []
        self.statuses: list[int] = []  # answers to the next requests, in order; then 202
        self.stall = threading.Event()  # while set, the gateway does not answer
        self.released = threading.Event()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """The client hung up on a stalled request: expected, not worth a traceback."""


class _GatewayHandler(http.server.BaseHTTPRequestHandler):
    server: _GatewayServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.requests.append(
            Request(path=self.path, headers=dict(self.headers.items()), body=json.loads(body))
        )
        if self.server.stall.is_set():
            self.server.released.wait(timeout=5)
        status = self.server.statuses.pop(0) if self.server.statuses else 202
        payload = json.dumps({"id": "gateway-1"}).encode()
        self.send_response(status)
        if 300 <= status < 400:
            self.send_header("Location", "https://elsewhere.example/sms")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass(frozen=True)
class Gateway:
    url: str
    server: _GatewayServer


@pytest.fixture
def sms_gateway() -> Iterator[Gateway]:
    """A local HTTP server standing in for an SMS gateway that speaks the webhook contract."""
    server = _GatewayServer()
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield Gateway(url=f"http://127.0.0.1:{server.server_address[1]}/sms", server=server)
    finally:
        server.released.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
