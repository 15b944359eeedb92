"""What ra raises."""

from __future__ import annotations

from cardvault.errors import (
    InvalidInput,
)


class WouldLockOut(InvalidInput):
    code = "would_lock_out"
