"""The vocabulary and the pure rules: policies, lockout, the audit chain, WebAuthn, limits."""
