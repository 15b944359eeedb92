"""FIDO2 security keys: registering a key for a card, and sign-in starting from one."""
