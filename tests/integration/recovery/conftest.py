"""The real SMTP server (tests/support/notify_servers.py), for the recovery tests."""

from tests.support.notify_servers import smtp_server, tls

__all__ = ["smtp_server", "tls"]
