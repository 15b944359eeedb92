"""Signing in: identification, passcode, second factor, lockout, card and web sessions."""
