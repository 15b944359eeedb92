"""cardvault: virtual smartcards whose keys never leave the service."""

__version__ = "0.1.0"
