"""What the app keeps on the phone, here in one 0600 JSON file.

A real app keeps the device key in the Secure Enclave / Android Keystore, the TOTP secret in
the keychain, and the device secret behind the biometric prompt. The reference client keeps
them in a file readable only by its user, and simulates the biometric prompt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cardvault.clients.common import state_file
from cardvault.errors import NotFound

FILE = "authenticator.json"


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


def default_dir() -> Path:
    return state_file.default_dir("cardvault-authenticator")


def save(directory: Path, state: DeviceState) -> Path:
    return state_file.write(directory / FILE, state)


def load(directory: Path) -> DeviceState:
    path = directory / FILE
    return state_file.load(
        path,
        DeviceState,
        missing=NotPaired(
            "This app is not paired with a card.",
            remedy="Run `cardvault-authenticator pair --qr-image FILE` with your RA's QR code.",
        ),
        damaged=NotPaired(f"The app's state file {path} is damaged.", remedy="Pair the app again."),
    )


def forget(directory: Path) -> None:
    state_file.remove(directory / FILE)
