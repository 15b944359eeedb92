"""The PC/SC connector: plugs a card held by the service into pcscd as a virtual reader."""

#: vpcd CHANNELID 0x8C7B, slot 0 ("Virtual PCD 00 00"); here, not in ``vpcd``, so that the
#: agent's ``connector --help`` shows it without importing the socket code
DEFAULT_PORT = 35963

__all__ = ["DEFAULT_PORT"]
