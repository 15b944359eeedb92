"""What the app keeps on the phone, here in one 0600 JSON file.

A real app keeps the device key in the Secure Enclave / Android Keystore, the TOTP secret in
the keychain, and the device secret behind the biometric prompt. The reference client keeps
them in a file readable only by its user, and simulates the biometric prompt.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cardvault.errors import CardvaultError

FILE = "authenticator.json"


class NotPaired(CardvaultError):
    code = "not_paired"
    exit_code = 3


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
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "cardvault-authenticator"


def save(directory: Path, state: DeviceState) -> Path:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / FILE
    tmp = directory / f".{FILE}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(asdict(state), fh)
    os.replace(tmp, path)
    return path


def load(directory: Path) -> DeviceState:
    path = directory / FILE
    try:
        return DeviceState(**json.loads(path.read_text()))
    except FileNotFoundError:
        raise NotPaired(
            "This app is not paired with a card.",
            remedy="Run `cardvault-authenticator pair --qr-image FILE` with your RA's QR code.",
        ) from None
    except (ValueError, TypeError) as exc:
        raise NotPaired(
            f"The app's state file {path} is damaged.", remedy="Pair the app again."
        ) from exc


def forget(directory: Path) -> None:
    path = directory / FILE
    if path.exists():
        path.write_bytes(b"\0" * path.stat().st_size)
        path.unlink()
