"""What the RA façade raises itself (it passes on the feature packages' errors)."""

from __future__ import annotations

from cardvault.errors import (
    InvalidInput,
)


class WouldLockOut(InvalidInput):
    """The change would put the RA's own address outside the organisation's networks."""

    code = "would_lock_out"
