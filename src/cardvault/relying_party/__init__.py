"""An example relying party: stands in for the national system a card holder signs in to.

It talks to cardvault only over HTTPS (for certificate status), like any real relying party.
"""
