"""keystore layer."""
