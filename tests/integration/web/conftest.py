"""The real SMTP server of the notify tests, shared with the vRA Manager tests."""

from tests.integration.notify.conftest import smtp_server, tls

__all__ = ["smtp_server", "tls"]
