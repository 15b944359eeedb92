"""What the CA raises: a CA not set up, a certificate that cannot be renewed."""

from __future__ import annotations

from cardvault.errors import (
    Conflict,
    NotSetUp,
)


class CaMissing(NotSetUp):
    """No CA has been set up (``cardvault ca init``), so no certificate can be issued."""

    code = "ca_missing"


class NotRenewable(Conflict):
    """The certificate cannot be renewed now (revoked, suspended, or not due)."""

    code = "not_renewable"
