"""What the app keeps on the phone, here in one 0600 JSON file.

A real app keeps the device key in the Secure Enclave / Android Keystore, the TOTP secret in
the keychain, and the device secret behind the biometric prompt. The reference client keeps
them in a file readable only by its user, and simulates the biometric prompt.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cardvault.clients.common import state_file
from cardvault.errors import NotFound


class NotPaired(NotFound):
    code = "not_paired"


@dataclass(kw_only=True)
class DeviceState:
    server: str
    kid: str
    device_id: str
    device_key_pem: str = field(repr=False)
    totp_secret: str = field(repr=False)
    application: str
    name: str
    card_serial: str
    organisation: str
    holder_name: str
    device_secret: str | None = field(default=None, repr=False)  # base64url, biometric unlock
    session: dict[str, str] | None = field(default=None, repr=False)


FILE = state_file.StateFile(
    program="cardvault-authenticator",
    name="authenticator.json",
    build=DeviceState,
    missing=NotPaired(
        "This app is not paired with a card.",
        remedy="Run `cardvault-authenticator pair --qr-image FILE` with your RA's QR code.",
    ),
    damaged=lambda path: NotPaired(
        f"The app's state file {path} is damaged.", remedy="Pair the app again."
    ),
)
default_dir, save, load, forget = FILE.default_dir, FILE.save, FILE.load, FILE.remove
