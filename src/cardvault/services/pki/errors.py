"""What pki raises."""

from __future__ import annotations

from cardvault.errors import (
    Conflict,
    NotSetUp,
)


class CaMissing(NotSetUp):
    """No CA has been set up (``cardvault ca init``), so no certificate can be issued."""

    code = "ca_missing"


class NotRenewable(Conflict):
    code = "not_renewable"
