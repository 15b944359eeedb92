"""One package per capability: the only layer combining the database, keys and domain."""
