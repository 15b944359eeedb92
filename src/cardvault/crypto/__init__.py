"""Pure cryptography, no I/O: KDF, AEAD, key slots, Shamir, keys, X.509, the JWE envelope."""
