"""The audit trail: hash-chained events, signed heads, anchors, rollback checks, display."""
