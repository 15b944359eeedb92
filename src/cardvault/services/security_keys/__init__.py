"""Security keys."""
