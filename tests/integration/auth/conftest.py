"""The real SMTP server of the notify tests, for the lock emails of the authentication tests."""

from tests.integration.notify.conftest import smtp_server, tls

__all__ = ["smtp_server", "tls"]
