"""The PC/SC channel (DESIGN §3.8): the PIV applet run in the service, one APDU at a time.

``issuance`` inserts a blank card into an RA's reader and notices when a card management
system has personalised it; ``links`` opens and closes reader connections for card sessions;
``relay`` answers one APDU against the stored state (compare-and-swap); ``ports`` gives the
applet the card's secrets; ``secrets`` seals the PIN/PUK verifiers and management key.
"""
