"""Directory."""
