"""The PC/SC connector: plugs a card held by the service into pcscd as a virtual reader."""
