"""What the rate limits raise."""

from __future__ import annotations

from dataclasses import field

from cardvault.domain import rate_limit
from cardvault.domain.rate_limit import Bucket, Scope
from cardvault.errors import (
    Unavailable,
    error,
)
from cardvault.json_types import JsonObject

_WHOSE = {Scope.ADDRESS: "from your network", Scope.IDENTIFIER: "for this account"}


@error
class RateLimited(Unavailable):
    """Too many requests in the bucket's window, from one address or for one identifier."""

    code = "rate_limited"
    message: str = field(default="", init=False)
    bucket: Bucket
    scope: Scope
    retry_after: int

    def __post_init__(self) -> None:
        wait = rate_limit.humane_wait(self.retry_after)
        self.message = (
            f"There have been too many attempts {_WHOSE[self.scope]}. Try again in {wait}."
        )
        super().__post_init__()

    def extensions(self) -> JsonObject:
        """When to come back, and which limit was reached (``address`` or ``identifier``)."""
        return {"retry_after": self.retry_after, "limit": self.scope.value}
