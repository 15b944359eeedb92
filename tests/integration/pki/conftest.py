"""The PKI tests drive the real CLI as well (``cardvault card revoke``)."""

from tests.integration.cli.conftest import cli

__all__ = ["cli"]
