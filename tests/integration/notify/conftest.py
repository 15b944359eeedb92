"""The real SMTP server and SMS gateway of tests/support/notify_servers.py, for these tests."""

from tests.support.notify_servers import sms_gateway, smtp_server, tls

__all__ = ["sms_gateway", "smtp_server", "tls"]
