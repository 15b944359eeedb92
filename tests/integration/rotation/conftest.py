"""The rotation tests drive the real CLI as well (``cardvault keys rotate-master``)."""

from tests.integration.cli.conftest import cli

__all__ = ["cli"]
