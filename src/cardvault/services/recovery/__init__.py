"""Self-service recovery: single-use links, passcode resets, their factors and limits."""
