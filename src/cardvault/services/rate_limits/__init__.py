"""Rate limits on anonymous endpoints: fixed-window counters and the check."""
