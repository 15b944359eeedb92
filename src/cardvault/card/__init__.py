"""card layer."""
