"""The transport key pair and the JWE envelopes of sensitive bodies (DESIGN §3.5)."""
