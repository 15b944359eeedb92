"""The directory: organisations, persons, memberships and RA roles."""
